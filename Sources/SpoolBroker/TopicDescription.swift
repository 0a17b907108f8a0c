/// A topic as the broker describes it to any listener.
public struct TopicDescription: Sendable {
    public var name: String
    public var partitions: [PartitionDescription]
    /// Effective configuration, every key.
    public var configs: [String: String]
    /// The keys set for this topic (the rest are broker defaults).
    public var overrides: [String: String]
    /// Replicas per partition (1 on a single-node broker).
    public var replicationFactor: Int = 1
}

/// One partition's offsets and size.
public struct PartitionDescription: Sendable {
    public var partition: Int32
    public var logStartOffset: Int64
    public var logEndOffset: Int64
    public var highWatermark: Int64
    public var sizeBytes: Int64
    public var segments: Int
    /// The partition stopped after a failed write or fsync and refuses appends.
    public var stopped: Bool
    /// Why it stopped (nil while it runs).
    public var failure: String? = nil
    /// The cluster's record of the partition as this broker last applied it (leader, epoch,
    /// replicas, ISR); nil on a single-node broker.
    public var replica: ReplicaState? = nil
}

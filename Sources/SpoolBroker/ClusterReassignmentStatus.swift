import SpoolRecords

/// A partition reassignment in progress (Kafka's ListPartitionReassignments entry): the full
/// replica set while it runs, and the replicas it adds and removes.
public struct ClusterReassignmentStatus: Sendable, Hashable {
    public var partition: TopicPartition
    public var replicas: [Int32]
    public var adding: [Int32]
    public var removing: [Int32]

    public init(partition: TopicPartition, replicas: [Int32], adding: [Int32], removing: [Int32]) {
        self.partition = partition
        self.replicas = replicas
        self.adding = adding
        self.removing = removing
    }
}

import SpoolRecords

/// What one partition's append produced, as every listener reports it.
public struct PartitionProduceResult: Sendable {
    public var topicPartition: TopicPartition
    /// Offset of the first record appended, or -1 on failure.
    public var baseOffset: Int64 = -1
    /// Offset of the last record appended, or -1 on failure.
    public var lastOffset: Int64 = -1
    /// The partition's log start offset after the append (-1 if unknown).
    public var logStartOffset: Int64 = -1
    /// Append time (-1: the batches' create times stand).
    public var logAppendTimeMillis: Int64 = -1
    /// Why the append failed (a `BrokerError`, `RecordsError` or `ProducerStateError`), or nil.
    public var error: Error?

    public init(topicPartition: TopicPartition) {
        self.topicPartition = topicPartition
    }
}

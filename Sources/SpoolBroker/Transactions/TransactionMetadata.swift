import SpoolRecords

/// What the coordinator keeps of one transactional id (durable, see ``TransactionStore``).
public struct TransactionMetadata: Codable, Sendable, Equatable {
    /// A partition of the transaction.
    public struct Partition: Codable, Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    }

    /// An offset committed inside the transaction (TxnOffsetCommit), stored at COMMIT.
    public struct PendingOffset: Codable, Sendable, Equatable {
        public var group: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var metadata: String
    }

    public var transactionalId: String
    public var producerId: Int64
    public var producerEpoch: Int16
    public var timeoutMillis: Int32
    public var state: TransactionState
    public var partitions: Set<Partition> = []
    public var groups: Set<String> = []
    public var pendingOffsets: [PendingOffset] = []
    /// When the open transaction began (wall clock, ms); for `transaction.timeout.ms`.
    public var startedAtMillis: Int64 = 0
    /// Last change (wall clock, ms); for the expiry of idle ids.
    public var updatedAtMillis: Int64 = 0
}

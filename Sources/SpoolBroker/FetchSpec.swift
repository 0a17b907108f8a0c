import SpoolRecords

/// A fetch as any listener asks it: partitions with their offsets, and the long-poll terms.
public struct FetchSpec: Sendable {
    /// One partition to read from.
    public struct Partition: Sendable {
        public var topicPartition: TopicPartition
        public var offset: Int64
        /// Most bytes for this partition (at least one whole batch is returned regardless,
        /// so that a consumer always makes progress, as Kafka does since KIP-74).
        public var maxBytes: Int
        /// The leader epoch the client believes current (KIP-320); -1 skips the check.
        public var currentLeaderEpoch: Int32 = -1
        /// A follower's epoch of its last fetched batch (Fetch v12+); -1: none.
        public var lastFetchedEpoch: Int32 = -1

        public init(_ topicPartition: TopicPartition, offset: Int64, maxBytes: Int) {
            self.topicPartition = topicPartition
            self.offset = offset
            self.maxBytes = maxBytes
        }
    }

    public var partitions: [Partition]
    /// Most bytes over all partitions (the first batch found is returned regardless).
    public var maxBytes: Int
    /// Answer as soon as this many bytes are ready (before `maxWaitMillis`).
    public var minBytes: Int
    /// Longest wait for `minBytes`, already capped by the broker's limit.
    public var maxWaitMillis: Int64
    /// The largest span any single partition may return: what fits in one response of the
    /// listener's protocol. A batch that cannot fit is not returned (the partition reports
    /// `BrokerError.Code.recordTooLarge`).
    public var spanBytesMax: Int
    /// Kafka's isolation level 1 (read_committed): reads stop at the last stable offset,
    /// and each partition reports the aborted transactions of the range it returns.
    public var readCommitted = false
    /// The fetching follower's node id; -1 for a consumer. A follower reads to the log
    /// end, and its fetch offset counts as its log end for the ISR and the HW.
    public var replicaId: Int32 = -1

    public init(partitions: [Partition], maxBytes: Int, minBytes: Int, maxWaitMillis: Int64, spanBytesMax: Int = Int(Int32.max)) {
        self.partitions = partitions
        self.maxBytes = maxBytes
        self.minBytes = minBytes
        self.maxWaitMillis = maxWaitMillis
        self.spanBytesMax = spanBytesMax
    }
}

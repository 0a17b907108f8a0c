import SpoolRecords

/// One partition of a planned fetch: the offsets to report, and the span of whole
/// batches planned for it (or why there is none). The span is the core's: a listener
/// learns its size here and asks `Broker.openSpan(_:budget:)` for the bytes.
public struct FetchedPartition: Sendable {
    public var topicPartition: TopicPartition
    public var highWatermark: Int64 = -1
    public var logStartOffset: Int64 = -1
    /// The last stable offset (no transaction open below it); -1 when unknown.
    public var lastStableOffset: Int64 = -1
    /// read_committed: the aborted transactions (producer id, first offset) overlapping the returned range.
    public var abortedTransactions: [(producerId: Int64, firstOffset: Int64)] = []
    /// Why this partition failed, or nil.
    public var error: BrokerError?
    /// For a follower whose last fetched epoch the leader's log disagrees with: the
    /// largest epoch ≤ it that the leader knows and where that epoch ends (the follower
    /// truncates there). Nothing is planned then.
    public var divergingEpoch: (epoch: Int32, endOffset: Int64)?
    /// The planned span (internal: only the core opens it).
    var planned: PlannedSpan?

    /// Bytes of whole batches planned for this partition (0: nothing to send).
    public var spanBytes: Int { planned?.span.length ?? 0 }
    /// Where the next read of this partition starts once the planned batches are sent,
    /// or nil when none are planned.
    public var nextOffset: Int64? { planned?.span.nextOffset }

    public init(topicPartition: TopicPartition) {
        self.topicPartition = topicPartition
    }
}

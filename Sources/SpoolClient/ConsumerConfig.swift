/// What a consumer does when its position is outside a partition's log (retention
/// deleted it, or it is past the end). Kafka: `auto.offset.reset`.
public enum OffsetReset: String, Sendable, CaseIterable {
    /// Go to the first offset still in the log.
    case earliest
    /// Go to the end of the log (only records produced from now on).
    case latest
    /// Fail the poll with `SpoolClientError.Code.offsetOutOfRange` (Kafka: `none`).
    case error
}

/// How a `SpoolConsumer` fetches, buffers and commits. Defaults follow Kafka's consumer.
public struct ConsumerConfig: Sendable {
    /// Consumer group whose committed offsets `commit()` writes and `.committed` reads. Kafka: `group.id`.
    public var group: String?
    /// Long poll: how long the broker may hold a fetch waiting for data. Kafka: `fetch.max.wait.ms` (500).
    public var maxWaitMillis: UInt32 = 500
    /// Kafka's `isolation.level=read_committed`: read only up to the last stable offset and
    /// skip the records of aborted transactions (off: every record, as read_uncommitted).
    public var readCommitted = false
    /// Bytes per partition per fetch (at least one batch is always returned). Kafka: `max.partition.fetch.bytes` (1 MiB).
    public var maxBytesPerPartition: UInt32 = 1 << 20
    /// Bytes per fetch over all partitions: with the per-partition bound, this caps what
    /// the consumer buffers between fetches. Kafka: `fetch.max.bytes` (50 MiB).
    public var maxBytesPerFetch: UInt32 = 50 << 20
    /// Records one `poll()` returns at most. Kafka: `max.poll.records` (500).
    public var maxPollRecords = 500
    /// Kafka: `auto.offset.reset` (latest).
    public var autoOffsetReset: OffsetReset = .latest
    /// Commit delivered positions every `autoCommitIntervalMillis`, from inside `poll()` and
    /// `records()` (so only records the application has finished with are committed), and
    /// on `close()`. Needs a group. Kafka: `enable.auto.commit` (true).
    public var enableAutoCommit = true
    /// Kafka: `auto.commit.interval.ms` (5000).
    public var autoCommitIntervalMillis = 5_000
    /// Pause after a fetch that failed for a retriable reason (the broker restarted) before
    /// the next one. Kafka: `retry.backoff.ms` (100).
    public var retryBackoffMillis = 100
    /// Told about every retriable failure the consumer rides out (for logging).
    public var onRetry: (@Sendable (Error) -> Void)?

    public init(group: String? = nil) {
        self.group = group
    }
}

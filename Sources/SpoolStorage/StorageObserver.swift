#if canImport(Glibc)
import Glibc
#endif
import SpoolRecords

/// What recovery did to one partition when the log was opened.
public struct PartitionRecoveryReport: Sendable, Hashable {
    public var topicPartition: TopicPartition
    /// True when the previous run stopped cleanly and nothing was scanned.
    public var clean: Bool
    /// Wall time spent opening the partition (recovery scan included).
    public var durationNanos: Int64
    /// Log bytes re-validated batch by batch.
    public var bytesScanned: Int64
    /// Log bytes cut off at the first torn or corrupt batch.
    public var bytesTruncated: Int64

    public init(topicPartition: TopicPartition, clean: Bool, durationNanos: Int64, bytesScanned: Int64, bytesTruncated: Int64) {
        self.topicPartition = topicPartition
        self.clean = clean
        self.durationNanos = durationNanos
        self.bytesScanned = bytesScanned
        self.bytesTruncated = bytesTruncated
    }
}

/// Why retention deleted a segment.
public enum RetentionReason: String, Sendable {
    /// Its newest record is older than `retention.ms`.
    case time
    /// The partition is larger than `retention.bytes` without it.
    case size
    /// DeleteRecords moved the log start offset past its last record.
    case deleteRecords = "delete_records"
}

/// Hooks through which storage reports what it does, for metrics and logs.
///
/// Storage knows nothing of either: the broker passes an observer to
/// ``LogManager/init(config:io:observer:)``, which hands it to every partition log.
/// Every method has an empty default. Methods are called on the thread doing the
/// work (often under no lock, never on an event loop by storage itself) and must be
/// cheap and never block.
public protocol StorageObserver: Sendable {
    /// One fsync round of a partition's log finished (a group commit or a flush).
    func fsyncCompleted(_ tp: TopicPartition, durationNanos: Int64)
    /// A group commit released `waiters` appends with one fsync round.
    func groupCommitCompleted(_ tp: TopicPartition, waiters: Int)
    /// A partition log was opened at start (recovered or not).
    func partitionOpened(_ report: PartitionRecoveryReport)
    /// Retention deleted one closed segment.
    func segmentDeleted(_ tp: TopicPartition, baseOffset: Int64, bytes: Int64, reason: RetentionReason)
    /// A partition stopped taking appends after a failed write or fsync.
    func partitionStopped(_ tp: TopicPartition, error: StorageError)
    /// Retention failed for one partition (deleting a segment, or the directory fsync after it).
    func retentionFailed(_ tp: TopicPartition, error: StorageError)
    /// A retention run over every partition ended; `failures` partitions failed in it.
    func retentionRunCompleted(failures: Int)
    /// Compacting the committed-offsets log failed. `stopped`: it failed after the rename,
    /// and the store refuses commits from now on; otherwise the old log goes on.
    func offsetsCompactionFailed(error: StorageError, stopped: Bool)
    /// The committed-offsets log was compacted.
    func offsetsCompacted(bytes: Int64)
    /// One fsync round of the committed-offsets log finished, covering `commits` records.
    func offsetsFsyncCompleted(durationNanos: Int64, commits: Int)
}

extension StorageObserver {
    public func fsyncCompleted(_ tp: TopicPartition, durationNanos: Int64) {}
    public func groupCommitCompleted(_ tp: TopicPartition, waiters: Int) {}
    public func partitionOpened(_ report: PartitionRecoveryReport) {}
    public func segmentDeleted(_ tp: TopicPartition, baseOffset: Int64, bytes: Int64, reason: RetentionReason) {}
    public func partitionStopped(_ tp: TopicPartition, error: StorageError) {}
    public func retentionFailed(_ tp: TopicPartition, error: StorageError) {}
    public func retentionRunCompleted(failures: Int) {}
    public func offsetsCompactionFailed(error: StorageError, stopped: Bool) {}
    public func offsetsCompacted(bytes: Int64) {}
    public func offsetsFsyncCompleted(durationNanos: Int64, commits: Int) {}
}

/// The observer that ignores everything (the default).
public struct NoStorageObserver: StorageObserver {
    public init() {}
}

/// A monotonic clock reading in nanoseconds, for durations reported to observers.
@inline(__always)
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

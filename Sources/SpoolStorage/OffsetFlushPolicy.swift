/// When a commit to the ``OffsetStore`` is answered, relative to the fsync that makes
/// it survive a power loss.
///
/// Kafka's broker answers an OffsetCommit once the record is in the `__consumer_offsets`
/// log (and, with `offsets.commit.required.acks=-1`, on its replicas); that log is fsynced
/// by its flush policy (by default, never: the page cache writes it back), not per commit.
/// Spool's default does the same with a bound on the window: a commit is answered once
/// written to the log file, so it survives the broker process dying (kill -9, a crash),
/// because the kernel holds the page; an fsync follows within the interval. A power loss
/// or kernel crash may lose the commits of that last interval: their consumers then resume
/// from an earlier commit and read those records again (at-least-once, never a skip).
public enum OffsetFlushPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Answer once written (page cache); fsync at most `millis` after the first commit
    /// not yet fsynced (one fsync covers every commit written before it).
    case interval(millis: Int64)
    /// Answer only once an fsync covers the commit (commits arriving together share it):
    /// survives a power loss, but a consumer that waits for each commit before the next
    /// gets at most one per fsync (about 2 ms on this machine's disk).
    case everyCommit

    /// `offsets.flush.ms`' default: at most one second of commits is at risk of a power loss.
    public static let defaultIntervalMillis: Int64 = 1000
    public static let `default` = OffsetFlushPolicy.interval(millis: defaultIntervalMillis)

    /// From `offsets.flush.ms`: 0 is ``everyCommit``, more is an ``interval(millis:)``.
    public init(flushMillis: Int64) {
        self = flushMillis <= 0 ? .everyCommit : .interval(millis: flushMillis)
    }

    public var description: String {
        switch self {
        case .interval(let millis): "answered once written, fsynced within \(millis) ms"
        case .everyCommit: "answered once fsynced"
        }
    }
}

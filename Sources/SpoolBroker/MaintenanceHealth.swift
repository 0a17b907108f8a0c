import Synchronization

/// How the broker's background tasks fare: retention, the expiry of committed offsets and
/// the compaction of the committed-offsets log. None of them answers a client, so a failure
/// would go unseen; each one is logged and counted (`spool_maintenance_failures_total`), and a
/// task that keeps failing makes the broker *degraded*: `/ready` and `spool broker info` say
/// which task and why, until a run of it succeeds.
///
/// ```swift
/// health.failed(.retention, "orders-0: fsync of the directory failed: EIO", nowMillis: now)
/// health.degraded   // [] until the third failure in a row
/// health.succeeded(.retention)
/// ```
public final class MaintenanceHealth: Sendable {
    /// A background task.
    public enum BackgroundTask: String, Sendable, CaseIterable, Hashable {
        /// Deleting segments past `retention.ms` / `retention.bytes`.
        case retention
        /// Deleting the committed offsets of groups idle past `offsets.retention.minutes`.
        case offsetExpiry = "offset_expiry"
        /// Rewriting the committed-offsets log as one record per group.
        case offsetsCompaction = "offsets_compaction"
    }

    /// One task's record.
    public struct Status: Sendable, Hashable {
        public var task: BackgroundTask
        /// Failed runs since the last one that succeeded.
        public var consecutiveFailures = 0
        /// Failed runs since the broker started.
        public var totalFailures = 0
        /// What the last failure said.
        public var lastError: String?
        /// When it failed last (wall clock, milliseconds since the epoch).
        public var lastFailureMillis: Int64 = 0

        /// The task failed `persistentFailuresMin` times in a row or more.
        public var isPersistent: Bool { consecutiveFailures >= MaintenanceHealth.persistentFailuresMin }

        /// For people: "retention failed 3 times in a row (last: …)".
        public var sentence: String {
            "\(task.rawValue) failed \(consecutiveFailures) time\(consecutiveFailures == 1 ? "" : "s") in a row (last: \(lastError ?? "?"))"
        }
    }

    /// Failures in a row after which a task counts as persistently failing (one failure
    /// may pass — a disk full for a moment — three runs in a row do not).
    public static let persistentFailuresMin = 3

    private let tasks = Mutex<[BackgroundTask: Status]>(Dictionary(uniqueKeysWithValues: BackgroundTask.allCases.map { ($0, Status(task: $0)) }))

    public init() {}

    /// Records a failed run of `task`. Returns its status after it.
    @discardableResult
    public func failed(_ task: BackgroundTask, _ error: String, nowMillis: Int64) -> Status {
        tasks.withLock { t in
            t[task]!.consecutiveFailures += 1
            t[task]!.totalFailures += 1
            t[task]!.lastError = error
            t[task]!.lastFailureMillis = nowMillis
            return t[task]!
        }
    }

    /// Records a run of `task` that succeeded. Returns how many failures in a row it ended.
    @discardableResult
    public func succeeded(_ task: BackgroundTask) -> Int {
        tasks.withLock { t in
            defer { t[task]!.consecutiveFailures = 0 }
            return t[task]!.consecutiveFailures
        }
    }

    /// Every task's status, in `BackgroundTask.allCases` order.
    public var all: [Status] { tasks.withLock { t in BackgroundTask.allCases.map { t[$0]! } } }

    /// The tasks failing persistently now; empty when the broker is not degraded.
    public var degraded: [Status] { all.filter(\.isPersistent) }
}

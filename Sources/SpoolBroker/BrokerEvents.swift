import Logging
import SpoolRecords
import SpoolStorage
import Synchronization

/// Where the broker reports what happens: metrics and the log, in one place.
///
/// It is the storage layer's observer (fsyncs, recovery, retention, stopped
/// partitions) and the core calls it for topic changes and rebalances. Messages at
/// info are the ones an operator wants in a normal log; warnings name the client
/// and the budget it hit; requests are logged at debug.
public final class BrokerEvents: StorageObserver, Sendable {
    public let metrics: BrokerMetrics
    public let logger: Logger
    /// How the background tasks fare (retention, offset expiry, offsets-log compaction).
    public let maintenance = MaintenanceHealth()
    private let recovery = Mutex(RecoveryTally())
    /// The failures of the retention run going on, reported together when it ends.
    private let retentionErrors = Mutex<[String]>([])
    /// The rate limits of the authentication and authorization-denial lines (BrokerEvents+Security).
    let authenticationLog = RateLimitedLog(linesPerSecond: BrokerEvents.securityLinesPerSecond)
    let denialLog = RateLimitedLog(linesPerSecond: BrokerEvents.securityLinesPerSecond)
    /// The rate limit of the refused-transaction line (BrokerEvents+Transactions).
    let transactionRefusalLog = RateLimitedLog(linesPerSecond: 1)

    struct RecoveryTally {
        var clean = 0
        var recovered = 0
        var nanos: Int64 = 0
        var scanned: Int64 = 0
        var truncated: Int64 = 0
    }

    public init(metrics: BrokerMetrics = .disabled(), logger: Logger = Logger(label: "spool.broker")) {
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: StorageObserver

    public func fsyncCompleted(_ tp: TopicPartition, durationNanos: Int64) {
        metrics.fsyncCompleted(durationNanos: durationNanos)
    }

    public func groupCommitCompleted(_ tp: TopicPartition, waiters: Int) {
        metrics.groupCommitCompleted(waiters: waiters)
    }

    public func offsetsFsyncCompleted(durationNanos: Int64, commits: Int) {
        metrics.offsetsFsyncCompleted(durationNanos: durationNanos, commits: commits)
    }

    public func partitionOpened(_ report: PartitionRecoveryReport) {
        metrics.partitionOpened(report)
        recovery.withLock { t in
            if report.clean { t.clean += 1 } else { t.recovered += 1 }
            t.nanos += report.durationNanos
            t.scanned += report.bytesScanned
            t.truncated += report.bytesTruncated
        }
        // A clean open scans nothing: one summary line says it for every partition.
        guard !report.clean else { return }
        logger.info("partition recovered", metadata: [
            "partition": "\(report.topicPartition)",
            "clean": "false",
            "duration_seconds": "\(Double(report.durationNanos) / 1e9)",
            "bytes_scanned": "\(report.bytesScanned)",
            "bytes_truncated": "\(report.bytesTruncated)",
        ])
    }

    public func segmentDeleted(_ tp: TopicPartition, baseOffset: Int64, bytes: Int64, reason: RetentionReason) {
        metrics.segmentDeleted(bytes: bytes, reason: reason)
        logger.info("retention deleted a segment", metadata: [
            "partition": "\(tp)", "segment": "\(baseOffset)", "bytes": "\(bytes)",
            "reason": "\(reason == .time ? "retention.ms" : "retention.bytes")",
        ])
    }

    public func partitionStopped(_ tp: TopicPartition, error: StorageError) {
        metrics.partitionStopped()
        logger.error("partition stopped", metadata: ["partition": "\(tp)", "error": "\(error.code)", "reason": "\(error.message)"])
    }

    public func retentionFailed(_ tp: TopicPartition, error: StorageError) {
        logger.error("retention failed", metadata: ["partition": "\(tp)", "error": "\(error.code)", "reason": "\(error.message)"])
        retentionErrors.withLock { $0.append("\(tp): \(error.message)") }
    }

    public func retentionRunCompleted(failures: Int) {
        let errors = retentionErrors.withLock { e -> [String] in
            defer { e.removeAll() }
            return e
        }
        if failures == 0 {
            maintenanceSucceeded(.retention)
        } else {
            let more = errors.count > 1 ? " (and \(errors.count - 1) more partitions)" : ""
            maintenanceFailed(.retention, (errors.first ?? "\(failures) partitions failed") + more)
        }
    }

    public func offsetsCompactionFailed(error: StorageError, stopped: Bool) {
        logger.error("committed-offsets compaction failed", metadata: [
            "error": "\(error.code)", "reason": "\(error.message)", "store_stopped": "\(stopped)",
        ])
        maintenanceFailed(.offsetsCompaction, error.message)
    }

    public func offsetsCompacted(bytes: Int64) {
        maintenanceSucceeded(.offsetsCompaction)
    }

    /// An offset-expiry round ended; `failures` are the groups whose offsets could not be removed.
    public func offsetExpiryRan(_ failures: [(group: String, error: String)]) {
        for f in failures {
            logger.error("committed offsets could not be expired", metadata: ["group": "\(f.group)", "reason": "\(f.error)"])
        }
        if let first = failures.first {
            let more = failures.count > 1 ? " (and \(failures.count - 1) more groups)" : ""
            maintenanceFailed(.offsetExpiry, "group \(first.group): \(first.error)" + more)
        } else {
            maintenanceSucceeded(.offsetExpiry)
        }
    }

    private func maintenanceFailed(_ task: MaintenanceHealth.BackgroundTask, _ error: String) {
        let status = maintenance.failed(task, error, nowMillis: PartitionLog.wallClockMillis())
        metrics.maintenanceFailed(task.rawValue, consecutive: status.consecutiveFailures)
        if status.consecutiveFailures == MaintenanceHealth.persistentFailuresMin {
            logger.error("broker degraded: a background task keeps failing", metadata: [
                "task": "\(task.rawValue)", "failures_in_a_row": "\(status.consecutiveFailures)", "reason": "\(error)",
            ])
        }
    }

    private func maintenanceSucceeded(_ task: MaintenanceHealth.BackgroundTask) {
        let ended = maintenance.succeeded(task)
        guard ended > 0 else { return }
        metrics.maintenanceFailed(task.rawValue, consecutive: 0)
        logger.info("background task succeeded again", metadata: ["task": "\(task.rawValue)", "after_failures": "\(ended)"])
    }

    // MARK: Broker events

    /// Logs the summary of opening storage (after every partition reported).
    public func storageOpened(cleanStop: Bool) {
        let t = recovery.withLock { $0 }
        logger.info("storage opened", metadata: [
            "previous_stop": "\(cleanStop ? "clean" : "unclean")",
            "partitions_clean": "\(t.clean)",
            "partitions_recovered": "\(t.recovered)",
            "duration_seconds": "\(Double(t.nanos) / 1e9)",
            "bytes_scanned": "\(t.scanned)",
            "bytes_truncated": "\(t.truncated)",
        ])
    }

    public func topicCreated(_ name: String, partitions: Int32, overrides: [String: String]) {
        logger.info("topic created", metadata: ["topic": "\(name)", "partitions": "\(partitions)", "configs": "\(Self.render(overrides))"])
    }

    public func topicDeleted(_ name: String) {
        metrics.topicDeleted(name)
        logger.info("topic deleted", metadata: ["topic": "\(name)"])
    }

    public func topicAltered(_ name: String, set: [String: String]) {
        logger.info("topic altered", metadata: ["topic": "\(name)", "configs": "\(Self.render(set))"])
    }

    /// A consumer group finished a rebalance.
    public func groupRebalanced(_ group: String, generation: Int32, members: [String]) {
        logger.info("group rebalanced", metadata: [
            "group": "\(group)", "generation": "\(generation)", "members": "\(members.joined(separator: ","))",
        ])
    }

    /// A client ran into a budget; the client is slowed or refused, never the broker.
    public func budgetHit(_ budget: String, client: String, detail: String) {
        metrics.budgetHit(budget)
        logger.warning("budget hit", metadata: ["budget": "\(budget)", "client": "\(client)", "detail": "\(detail)"])
    }

    /// A request, at debug level.
    public func request(listener: String, api: String, client: String, durationNanos: Int64, error: String?) {
        guard logger.logLevel <= .debug else { return }
        var metadata: Logger.Metadata = [
            "listener": "\(listener)", "api": "\(api)", "client": "\(client)",
            "duration_seconds": "\(Double(durationNanos) / 1e9)",
        ]
        if let error { metadata["error"] = "\(error)" }
        logger.debug("request", metadata: metadata)
    }

    static func render(_ configs: [String: String]) -> String {
        configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

import CoreMetrics
import SpoolRecords
import SpoolStorage
import Synchronization

/// The broker's metrics, through swift-metrics, named by Prometheus conventions:
/// `spool_` prefix, base units (seconds, bytes), `_total` on counters.
///
/// The broker creates one `BrokerMetrics` with the factory it is given (the admin
/// listener passes a Prometheus one; tests and `--http-listen none` pass
/// `NOOPMetricsHandler`). Hot paths hold handles obtained once (``TopicMetrics``,
/// ``RequestMetrics``, ``ListenerMetrics``), so recording is an atomic add, not a
/// lookup. Per-partition gauges (offsets, sizes, lag) are set by `collect(storage:groups:budgets:)` (`Broker.collectMetrics`)
/// when a scrape asks, so nothing is computed between scrapes.
///
/// ```swift
/// let metrics = BrokerMetrics(factory: PrometheusMetricsFactory(registry: registry))
/// metrics.topic("orders").recordsIn(count: 100, bytes: 6_400)
/// ```
public final class BrokerMetrics: Sendable {
    /// The kind of a metric, for exporters that need it up front.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// A metric's name, kind, help text and (for histograms) bucket upper bounds in the metric's unit.
    public struct Descriptor: Sendable {
        public var name: String
        public var kind: Kind
        public var help: String
        public var buckets: [Double]
    }

    /// Upper bounds for latency histograms, in seconds: 50 µs to 10 s.
    public static let latencyBucketsSeconds: [Double] = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
    ]
    /// Upper bounds for the appends released by one group commit.
    public static let groupCommitBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    /// Every metric the broker exports, with its help text. Exporters look names up here.
    public static let catalogue: [Descriptor] = [
        .init(name: "spool_build_info", kind: .gauge, help: "Always 1; the version label tells the broker's version.", buckets: []),
        .init(name: "spool_uptime_seconds", kind: .gauge, help: "Seconds since the broker started.", buckets: []),
        // Data flow per topic.
        .init(name: "spool_records_in_total", kind: .counter, help: "Records appended to a topic.", buckets: []),
        .init(name: "spool_bytes_in_total", kind: .counter, help: "Record-batch bytes appended to a topic.", buckets: []),
        .init(name: "spool_records_out_total", kind: .counter, help: "Records sent to consumers of a topic (fetch and subscribe).", buckets: []),
        .init(name: "spool_bytes_out_total", kind: .counter, help: "Record-batch bytes sent to consumers of a topic.", buckets: []),
        // Requests.
        .init(name: "spool_requests_total", kind: .counter, help: "Requests answered, by listener and API.", buckets: []),
        .init(name: "spool_request_errors_total", kind: .counter, help: "Requests answered with an error, by listener, API and error code.", buckets: []),
        .init(name: "spool_request_duration_seconds", kind: .histogram, help: "Time from a request's arrival to its answer, by listener and API.", buckets: latencyBucketsSeconds),
        // Listeners.
        .init(name: "spool_connections", kind: .gauge, help: "Open client connections, by listener.", buckets: []),
        .init(name: "spool_connections_accepted_total", kind: .counter, help: "Client connections accepted, by listener.", buckets: []),
        .init(name: "spool_accept_failures_total", kind: .counter, help: "accept() failures for want of descriptors or memory, by listener (each pauses accepting 100 ms).", buckets: []),
        .init(name: "spool_quota_throttle_seconds_total", kind: .counter, help: "Time answers were held for clients over their byte-rate quota, by kind (produce, fetch).", buckets: []),
        .init(name: "spool_quota_throttled_responses_total", kind: .counter, help: "Answers held for clients over their byte-rate quota, by kind.", buckets: []),
        .init(name: "spool_calls_in_flight", kind: .gauge, help: "Calls received and not yet fully answered, by listener.", buckets: []),
        .init(name: "spool_buffered_in_bytes", kind: .gauge, help: "Bytes of unfinished request frames held in memory over all connections (the shared inbound budget's use).", buckets: []),
        .init(name: "spool_buffered_in_bytes_budget", kind: .gauge, help: "Most bytes of unfinished request frames held over all connections (the inbound budget).", buckets: []),
        .init(name: "spool_connections_budget", kind: .gauge, help: "Most client connections over all listeners (max.connections, within the descriptor budget).", buckets: []),
        .init(name: "spool_span_descriptors_in_use", kind: .gauge, help: "Descriptors held by record spans being sent, from the shared pool.", buckets: []),
        .init(name: "spool_budget_events_total", kind: .counter, help: "Times clients ran into a budget, by event: connections_refused, reads_paused, frames_refused, slow_senders_dropped, responses_deferred.", buckets: []),
        .init(name: "spool_buffered_out_bytes", kind: .gauge, help: "Bytes of responses queued and not yet written to sockets, by listener.", buckets: []),
        .init(name: "spool_budget_rejections_total", kind: .counter, help: "Requests or connections refused because a budget was hit, by budget.", buckets: []),
        // Storage.
        .init(name: "spool_fsync_duration_seconds", kind: .histogram, help: "Duration of one fsync round of a partition log.", buckets: latencyBucketsSeconds),
        .init(name: "spool_group_commit_appends", kind: .histogram, help: "Appends released by one group-commit fsync round (acks=all waiters sharing an fsync).", buckets: groupCommitBuckets),
        .init(name: "spool_offsets_fsync_duration_seconds", kind: .histogram, help: "Duration of one fsync round of the committed-offsets log.", buckets: latencyBucketsSeconds),
        .init(name: "spool_offsets_fsync_commits", kind: .histogram, help: "Commits (and group or topic removals) made durable by one fsync round of the committed-offsets log.", buckets: groupCommitBuckets),
        .init(name: "spool_log_start_offset", kind: .gauge, help: "First offset still in a partition's log.", buckets: []),
        .init(name: "spool_log_end_offset", kind: .gauge, help: "Offset the next record of a partition will get.", buckets: []),
        .init(name: "spool_log_size_bytes", kind: .gauge, help: "Bytes of a partition's segment files.", buckets: []),
        .init(name: "spool_log_segments", kind: .gauge, help: "Segment files of a partition.", buckets: []),
        .init(name: "spool_partitions", kind: .gauge, help: "Partitions the broker holds.", buckets: []),
        .init(name: "spool_partitions_stopped", kind: .gauge, help: "Partitions refusing appends after a failed write or fsync.", buckets: []),
        .init(name: "spool_partition_stops_total", kind: .counter, help: "Times a partition stopped after a failed write or fsync.", buckets: []),
        .init(name: "spool_open_descriptors", kind: .gauge, help: "File descriptors open in the broker process (files and sockets).", buckets: []),
        .init(name: "spool_descriptor_budget", kind: .gauge, help: "File descriptors the broker may hold open (process limit).", buckets: []),
        .init(name: "spool_segment_files_open", kind: .gauge, help: "Segment and index files held open by the descriptor cache.", buckets: []),
        .init(name: "spool_segment_files_budget", kind: .gauge, help: "Most segment and index files the descriptor cache keeps open (max.open.files).", buckets: []),
        .init(name: "spool_recovery_duration_seconds", kind: .gauge, help: "Time spent opening partition logs at start, recovery scans included.", buckets: []),
        .init(name: "spool_recovery_scanned_bytes", kind: .gauge, help: "Log bytes re-validated by recovery at start (0 after a clean stop).", buckets: []),
        .init(name: "spool_recovery_truncated_bytes", kind: .gauge, help: "Log bytes cut off by recovery at start (torn or corrupt tails).", buckets: []),
        .init(name: "spool_retention_deleted_segments_total", kind: .counter, help: "Segments deleted by retention, by reason (time or size).", buckets: []),
        .init(name: "spool_retention_deleted_bytes_total", kind: .counter, help: "Bytes deleted by retention, by reason (time or size).", buckets: []),
        .init(name: "spool_maintenance_failures_total", kind: .counter, help: "Failed runs of a background task, by task: retention, offset_expiry, offsets_compaction.", buckets: []),
        .init(name: "spool_maintenance_failing_runs", kind: .gauge, help: "Failed runs in a row of a background task, by task (0 once a run succeeds; 3 or more: the broker is degraded).", buckets: []),
        // Consumer groups.
        .init(name: "spool_consumer_group_committed_offset", kind: .gauge, help: "Offset a consumer group committed for a partition.", buckets: []),
        .init(name: "spool_consumer_group_lag", kind: .gauge, help: "Records between a group's committed offset and the partition's end.", buckets: []),
        .init(name: "spool_consumer_group_members", kind: .gauge, help: "Members of a consumer group.", buckets: []),
    ] + CleanerMetrics.catalogue + SecurityMetrics.catalogue + ReplicationMetrics.catalogue

    /// The catalogue by name.
    public static let descriptors: [String: Descriptor] = Dictionary(uniqueKeysWithValues: catalogue.map { ($0.name, $0) })

    public let factory: any MetricsFactory
    /// True when metrics go somewhere (false with the no-op factory).
    public let enabled: Bool
    let startNanos = monotonicNanos()

    let uptime: Gauge
    let fsyncDuration: CoreMetrics.Timer
    let groupCommitAppends: Recorder
    let offsetsFsyncDuration: CoreMetrics.Timer
    let offsetsFsyncCommits: Recorder
    let partitionStops: Counter
    let recoveryDuration: Meter
    let recoveryScanned: Meter
    let recoveryTruncated: Meter
    let partitionsGauge: Gauge
    let stoppedGauge: Gauge
    let openDescriptors: Gauge
    let descriptorBudget: Gauge
    let segmentFilesOpen: Gauge
    let segmentFilesBudget: Gauge
    /// Authentication and authorization counters.
    public let security: SecurityMetrics
    /// ISR changes and follower lag of the partitions this broker leads.
    public let replication: ReplicationMetrics

    private let topics = Mutex<[String: TopicMetrics]>([:])
    private let requests = Mutex<[RequestKey: RequestMetrics]>([:])
    private let listeners = Mutex<[String: ListenerMetrics]>([:])
    private let retention = Mutex<[RetentionReason: (segments: Counter, bytes: Counter)]>([:])
    private let budgets = Mutex<[String: Counter]>([:])
    private let maintenance = Mutex<[String: (failures: Counter, failing: Gauge)]>([:])
    private let budgetEventCounters = Mutex<[String: Counter]>([:])
    /// Budget counters already exported (the budgets count; scrapes add the difference).
    private let budgetEventsSeen = Mutex<BudgetCounters>(BudgetCounters())
    /// Gauges set on scrape, by series; removed when their partition or group goes away.
    private let scraped = Mutex<[ScrapedKey: Gauge]>([:])

    /// Metrics reported to `factory`.
    public init(factory: any MetricsFactory, version: String = Broker.version) {
        self.factory = factory
        enabled = !(factory is NOOPMetricsHandler)
        Gauge(label: "spool_build_info", dimensions: [("version", version)], factory: factory).record(1)
        uptime = Gauge(label: "spool_uptime_seconds", factory: factory)
        fsyncDuration = CoreMetrics.Timer(label: "spool_fsync_duration_seconds", factory: factory)
        groupCommitAppends = Recorder(label: "spool_group_commit_appends", aggregate: true, factory: factory)
        offsetsFsyncDuration = CoreMetrics.Timer(label: "spool_offsets_fsync_duration_seconds", factory: factory)
        offsetsFsyncCommits = Recorder(label: "spool_offsets_fsync_commits", aggregate: true, factory: factory)
        partitionStops = Counter(label: "spool_partition_stops_total", factory: factory)
        recoveryDuration = Meter(label: "spool_recovery_duration_seconds", factory: factory)
        recoveryScanned = Meter(label: "spool_recovery_scanned_bytes", factory: factory)
        recoveryTruncated = Meter(label: "spool_recovery_truncated_bytes", factory: factory)
        partitionsGauge = Gauge(label: "spool_partitions", factory: factory)
        stoppedGauge = Gauge(label: "spool_partitions_stopped", factory: factory)
        openDescriptors = Gauge(label: "spool_open_descriptors", factory: factory)
        descriptorBudget = Gauge(label: "spool_descriptor_budget", factory: factory)
        segmentFilesOpen = Gauge(label: "spool_segment_files_open", factory: factory)
        segmentFilesBudget = Gauge(label: "spool_segment_files_budget", factory: factory)
        security = SecurityMetrics(factory: factory)
        replication = ReplicationMetrics(factory: factory)
    }

    /// Metrics that go nowhere.
    public static func disabled() -> BrokerMetrics {
        BrokerMetrics(factory: NOOPMetricsHandler.instance)
    }

    // MARK: Handles for hot paths

    /// The counters of one topic (created on first use, then cached).
    public func topic(_ name: String) -> TopicMetrics {
        if let existing = topics.withLock({ $0[name] }) { return existing }
        let made = TopicMetrics(topic: name, factory: factory)
        return topics.withLock { all in
            if let existing = all[name] { return existing }
            all[name] = made
            return made
        }
    }

    /// The request counters of one API on one listener (cache the handle).
    public func requests(listener: String, api: String) -> RequestMetrics {
        let key = RequestKey(listener: listener, api: api)
        return requests.withLock { all in
            if let existing = all[key] { return existing }
            let made = RequestMetrics(listener: listener, api: api, factory: factory)
            all[key] = made
            return made
        }
    }

    /// The gauges of one listener (cache the handle).
    public func listener(_ name: String) -> ListenerMetrics {
        listeners.withLock { all in
            if let existing = all[name] { return existing }
            let made = ListenerMetrics(listener: name, factory: factory)
            all[name] = made
            return made
        }
    }

    /// Counts a request or connection refused because `budget` was hit.
    public func budgetHit(_ budget: String) {
        budgets.withLock { all in
            if let counter = all[budget] { return counter }
            let counter = Counter(label: "spool_budget_rejections_total", dimensions: [("budget", budget)], factory: factory)
            all[budget] = counter
            return counter
        }.increment()
    }

    /// Forgets a deleted topic's series.
    public func topicDeleted(_ name: String) {
        topics.withLock { $0.removeValue(forKey: name) }?.destroy()
    }

    // MARK: Storage events

    func fsyncCompleted(durationNanos: Int64) {
        fsyncDuration.recordNanoseconds(durationNanos)
    }

    func groupCommitCompleted(waiters: Int) {
        groupCommitAppends.record(waiters)
    }

    func offsetsFsyncCompleted(durationNanos: Int64, commits: Int) {
        offsetsFsyncDuration.recordNanoseconds(durationNanos)
        offsetsFsyncCommits.record(commits)
    }

    func partitionOpened(_ report: PartitionRecoveryReport) {
        recoveryDuration.increment(by: Double(report.durationNanos) / 1e9)
        if report.bytesScanned > 0 { recoveryScanned.increment(by: Double(report.bytesScanned)) }
        if report.bytesTruncated > 0 { recoveryTruncated.increment(by: Double(report.bytesTruncated)) }
    }

    func segmentDeleted(bytes: Int64, reason: RetentionReason) {
        let counters = retention.withLock { all in
            if let existing = all[reason] { return existing }
            let made = (Counter(label: "spool_retention_deleted_segments_total", dimensions: [("reason", reason.rawValue)], factory: factory),
                        Counter(label: "spool_retention_deleted_bytes_total", dimensions: [("reason", reason.rawValue)], factory: factory))
            all[reason] = made
            return made
        }
        counters.segments.increment()
        counters.bytes.increment(by: bytes)
    }

    /// A background task failed (`consecutive` > 0), or succeeded again after failing (0).
    func maintenanceFailed(_ task: String, consecutive: Int) {
        let handles = maintenance.withLock { all in
            if let known = all[task] { return known }
            let made = (Counter(label: "spool_maintenance_failures_total", dimensions: [("task", task)], factory: factory),
                        Gauge(label: "spool_maintenance_failing_runs", dimensions: [("task", task)], factory: factory))
            all[task] = made
            return made
        }
        if consecutive > 0 { handles.failures.increment() }
        handles.failing.record(consecutive)
    }

    func partitionStopped() {
        partitionStops.increment()
    }

    // MARK: Collected on scrape

    /// What a scrape needs from the groups: committed offsets per group, and members where known.
    public struct GroupSnapshot: Sendable {
        public var group: String
        public var members: Int?
        public var committed: [TopicPartition: Int64]

        public init(group: String, members: Int?, committed: [TopicPartition: Int64]) {
            self.group = group
            self.members = members
            self.committed = committed
        }
    }

    /// Sets the gauges computed from state: per-partition offsets and sizes, consumer
    /// lag, descriptors, uptime. Call right before exporting. Series of partitions and
    /// groups that no longer exist are removed.
    func collect(storage: LogManager, groups: [GroupSnapshot], budgets: ResourceBudgets? = nil, followerLags: [FollowerLag] = []) {
        uptime.record(Double(monotonicNanos() - startNanos) / 1e9)
        var seen = Set<ScrapedKey>()
        func set(_ name: String, _ dims: [(String, String)], _ value: Int64) {
            let key = ScrapedKey(name: name, labels: dims.map { $0.1 })
            seen.insert(key)
            let gauge = scraped.withLock { all in
                if let g = all[key] { return g }
                let g = Gauge(label: name, dimensions: dims, factory: factory)
                all[key] = g
                return g
            }
            gauge.record(value)
        }
        var ends: [TopicPartition: Int64] = [:]
        var partitions = 0
        var stopped = 0
        for topic in storage.topics.all {
            guard let logs = try? storage.partitions(of: topic.name) else { continue }
            for log in logs {
                let dims = [("topic", log.topic), ("partition", String(log.partition))]
                let end = log.endOffset
                ends[TopicPartition(log.topic, log.partition)] = end
                set("spool_log_start_offset", dims, log.startOffset)
                set("spool_log_end_offset", dims, end)
                set("spool_log_size_bytes", dims, log.sizeBytes)
                set("spool_log_segments", dims, Int64(log.segmentCount))
                partitions += 1
                if log.failure != nil { stopped += 1 }
            }
        }
        for group in groups {
            if let members = group.members {
                set("spool_consumer_group_members", [("group", group.group)], Int64(members))
            }
            for (tp, offset) in group.committed {
                guard let end = ends[tp] else { continue }
                let dims = [("group", group.group), ("topic", tp.topic), ("partition", String(tp.partition))]
                set("spool_consumer_group_committed_offset", dims, offset)
                set("spool_consumer_group_lag", dims, max(0, end - offset))
            }
        }
        if let budgets { collect(budgets, set: set) }
        for lag in followerLags {
            let dims = [("topic", lag.topicPartition.topic), ("partition", String(lag.topicPartition.partition)), ("follower", String(lag.follower))]
            set("spool_follower_lag_records", dims, lag.records)
            set("spool_follower_lag_seconds", dims, lag.millis / 1000)
        }
        partitionsGauge.record(partitions)
        stoppedGauge.record(stopped)
        openDescriptors.record(ProcessStats.openDescriptors())
        descriptorBudget.record(ProcessStats.descriptorLimit())
        segmentFilesOpen.record(storage.files.openCount)
        segmentFilesBudget.record(storage.files.capacity)
        let gone = scraped.withLock { all -> [Gauge] in
            let stale = all.keys.filter { !seen.contains($0) }
            return stale.compactMap { all.removeValue(forKey: $0) }
        }
        for gauge in gone { gauge.destroy() }
    }

    /// The shared budgets' use (gauges) and how often they were hit (counters moved by the
    /// difference since the last scrape).
    private func collect(_ budgets: ResourceBudgets, set: (String, [(String, String)], Int64) -> Void) {
        let now = budgets.snapshot
        set("spool_buffered_in_bytes", [], Int64(now.inboundBufferedBytes))
        set("spool_buffered_in_bytes_budget", [], Int64(budgets.config.inboundBufferedBytesMax))
        set("spool_connections_budget", [], Int64(budgets.descriptors.maxConnections))
        set("spool_span_descriptors_in_use", [], Int64(now.sharedSpanDescriptorsInUse))
        let before = budgetEventsSeen.withLock { seen -> BudgetCounters in
            defer { seen = now }
            return seen
        }
        let events: [(String, Int, Int)] = [
            ("connections_refused", now.connectionsRefused, before.connectionsRefused),
            ("reads_paused", now.readsPaused, before.readsPaused),
            ("frames_refused", now.framesRefused, before.framesRefused),
            ("slow_senders_dropped", now.slowSendersDropped, before.slowSendersDropped),
            ("responses_deferred", now.responsesDeferred, before.responsesDeferred),
        ]
        for (event, count, seen) in events {
            let counter = budgetEventCounters.withLock { all in
                if let c = all[event] { return c }
                let c = Counter(label: "spool_budget_events_total", dimensions: [("event", event)], factory: factory)
                all[event] = c
                return c
            }
            if count > seen { counter.increment(by: count - seen) }
        }
    }

    struct RequestKey: Hashable {
        var listener: String
        var api: String
    }

    struct ScrapedKey: Hashable {
        var name: String
        var labels: [String]
    }
}

/// The data-flow counters of one topic. Obtain with ``BrokerMetrics/topic(_:)``.
public final class TopicMetrics: Sendable {
    let recordsIn: Counter
    let bytesIn: Counter
    let recordsOut: Counter
    let bytesOut: Counter
    // The same counts, readable (swift-metrics handles are write-only): the admin API shows them.
    private let recordsInTotal = Atomic<Int64>(0)
    private let bytesInTotal = Atomic<Int64>(0)
    private let recordsOutTotal = Atomic<Int64>(0)
    private let bytesOutTotal = Atomic<Int64>(0)

    /// Totals since the broker started: records and bytes in and out.
    public var totals: (recordsIn: Int64, bytesIn: Int64, recordsOut: Int64, bytesOut: Int64) {
        (recordsInTotal.load(ordering: .relaxed), bytesInTotal.load(ordering: .relaxed),
         recordsOutTotal.load(ordering: .relaxed), bytesOutTotal.load(ordering: .relaxed))
    }

    init(topic: String, factory: any MetricsFactory) {
        let dims = [("topic", topic)]
        recordsIn = Counter(label: "spool_records_in_total", dimensions: dims, factory: factory)
        bytesIn = Counter(label: "spool_bytes_in_total", dimensions: dims, factory: factory)
        recordsOut = Counter(label: "spool_records_out_total", dimensions: dims, factory: factory)
        bytesOut = Counter(label: "spool_bytes_out_total", dimensions: dims, factory: factory)
    }

    /// `count` records in `bytes` batch bytes were appended.
    @inline(__always)
    public func recordsIn(count: Int64, bytes: Int) {
        recordsIn.increment(by: count)
        bytesIn.increment(by: bytes)
        recordsInTotal.add(count, ordering: .relaxed)
        bytesInTotal.add(Int64(bytes), ordering: .relaxed)
    }

    /// `count` records in `bytes` batch bytes were sent to a consumer.
    @inline(__always)
    public func recordsOut(count: Int64, bytes: Int) {
        recordsOut.increment(by: count)
        bytesOut.increment(by: bytes)
        recordsOutTotal.add(count, ordering: .relaxed)
        bytesOutTotal.add(Int64(bytes), ordering: .relaxed)
    }

    func destroy() {
        recordsIn.destroy()
        bytesIn.destroy()
        recordsOut.destroy()
        bytesOut.destroy()
    }
}

/// Count, latency and errors of one API on one listener. Obtain once with
/// ``BrokerMetrics/requests(listener:api:)`` and keep it.
public final class RequestMetrics: Sendable {
    let listener: String
    let api: String
    let factory: any MetricsFactory
    let count: Counter
    let duration: CoreMetrics.Timer
    private let errors = Mutex<[String: Counter]>([:])

    init(listener: String, api: String, factory: any MetricsFactory) {
        self.listener = listener
        self.api = api
        self.factory = factory
        let dims = [("listener", listener), ("api", api)]
        count = Counter(label: "spool_requests_total", dimensions: dims, factory: factory)
        duration = CoreMetrics.Timer(label: "spool_request_duration_seconds", dimensions: dims, factory: factory)
    }

    /// A request was answered after `durationNanos`; `errorCode` names its error, if any.
    public func completed(durationNanos: Int64, errorCode: String? = nil) {
        count.increment()
        duration.recordNanoseconds(durationNanos)
        if let errorCode { error(errorCode) }
    }

    private func error(_ code: String) {
        errors.withLock { all in
            if let counter = all[code] { return counter }
            let counter = Counter(label: "spool_request_errors_total", dimensions: [("listener", listener), ("api", api), ("code", code)], factory: factory)
            all[code] = counter
            return counter
        }.increment()
    }
}

/// The gauges of one listener: connections, calls in flight, bytes buffered.
/// Obtain once with ``BrokerMetrics/listener(_:)``.
public final class ListenerMetrics: Sendable {
    public let connections: Meter
    public let connectionsAccepted: Counter
    public let callsInFlight: Meter
    public let bufferedOutBytes: Meter
    /// accept() failures for want of descriptors or memory (`AcceptThrottle`).
    public let acceptFailures: Counter

    init(listener: String, factory: any MetricsFactory) {
        let dims = [("listener", listener)]
        connections = Meter(label: "spool_connections", dimensions: dims, factory: factory)
        connectionsAccepted = Counter(label: "spool_connections_accepted_total", dimensions: dims, factory: factory)
        callsInFlight = Meter(label: "spool_calls_in_flight", dimensions: dims, factory: factory)
        bufferedOutBytes = Meter(label: "spool_buffered_out_bytes", dimensions: dims, factory: factory)
        acceptFailures = Counter(label: "spool_accept_failures_total", dimensions: dims, factory: factory)
    }

    /// A connection was accepted.
    public func connectionOpened() {
        connections.increment()
        connectionsAccepted.increment()
    }

    /// A connection closed.
    public func connectionClosed() {
        connections.decrement()
    }
}

import CoreMetrics
import SpoolStorage
import Synchronization

/// The log cleaner's metrics: `spool_cleaner_bytes_total` (read and written, by direction),
/// `spool_cleaner_runs_total`, `spool_cleaner_partitions_cleaned_total`,
/// `spool_cleaner_records_removed_total`, `spool_cleaner_failures_total` (counters moved by
/// the difference since the last scrape) and `spool_cleaner_last_run_seconds` (a gauge).
final class CleanerMetrics: Sendable {
    static let catalogue: [BrokerMetrics.Descriptor] = [
        .init(name: "spool_cleaner_bytes_total", kind: .counter, help: "Bytes the log cleaner read and wrote, by direction.", buckets: []),
        .init(name: "spool_cleaner_runs_total", kind: .counter, help: "Passes of the log cleaner over the compacted partitions.", buckets: []),
        .init(name: "spool_cleaner_partitions_cleaned_total", kind: .counter, help: "Cleans of one partition.", buckets: []),
        .init(name: "spool_cleaner_records_removed_total", kind: .counter, help: "Records the cleaner removed (superseded, keyless, expired tombstones).", buckets: []),
        .init(name: "spool_cleaner_failures_total", kind: .counter, help: "Cleans of one partition that failed (retried on the next pass).", buckets: []),
        .init(name: "spool_cleaner_last_run_seconds", kind: .gauge, help: "Duration of the last cleaner pass that cleaned something.", buckets: []),
    ]

    private let read: Counter
    private let written: Counter
    private let runs: Counter
    private let cleaned: Counter
    private let removed: Counter
    private let failures: Counter
    private let lastRun: Gauge
    private let reported = Mutex(LogCleanerStats())

    init(factory: any MetricsFactory) {
        read = Counter(label: "spool_cleaner_bytes_total", dimensions: [("direction", "read")], factory: factory)
        written = Counter(label: "spool_cleaner_bytes_total", dimensions: [("direction", "written")], factory: factory)
        runs = Counter(label: "spool_cleaner_runs_total", factory: factory)
        cleaned = Counter(label: "spool_cleaner_partitions_cleaned_total", factory: factory)
        removed = Counter(label: "spool_cleaner_records_removed_total", factory: factory)
        failures = Counter(label: "spool_cleaner_failures_total", factory: factory)
        lastRun = Gauge(label: "spool_cleaner_last_run_seconds", factory: factory)
    }

    /// Moves the counters to `now` (the cleaner's totals).
    func report(_ now: LogCleanerStats) {
        let before = reported.withLock { r in
            let b = r
            r = now
            return b
        }
        func move(_ counter: Counter, _ delta: Int64) { if delta > 0 { counter.increment(by: delta) } }
        move(read, now.bytesRead - before.bytesRead)
        move(written, now.bytesWritten - before.bytesWritten)
        move(runs, now.runs - before.runs)
        move(cleaned, now.partitionsCleaned - before.partitionsCleaned)
        move(removed, now.recordsRemoved - before.recordsRemoved)
        move(failures, now.failures - before.failures)
        lastRun.record(now.lastRunSeconds)
    }
}

import Dispatch
import Synchronization

/// Settings of the log cleaner (Kafka's `log.cleaner.*`).
public struct LogCleanerConfig: Sendable {
    /// `log.cleaner.enable`.
    public var enabled = true
    /// `log.cleaner.backoff.ms`: pause between passes over the partitions.
    public var backoffMillis: Int64 = 15_000
    /// `log.cleaner.io.max.bytes.per.second` (read and written together); infinity: no limit.
    public var ioMaxBytesPerSecond: Double = .infinity
    /// `log.cleaner.dedupe.buffer.size`: the key map's bound per clean.
    public var dedupeBufferBytes = PartitionLog.cleanerKeyMapBytesMax
    /// `log.cleaner.threads`: Spool runs one cleaner thread (a larger value is refused).
    public static let threads = 1

    public init() {}
}

/// What the cleaner did so far (for metrics).
public struct LogCleanerStats: Hashable, Sendable {
    /// Bytes read and written by cleans.
    public var bytesRead: Int64 = 0
    public var bytesWritten: Int64 = 0
    /// Passes over the partitions, and cleans of one partition.
    public var runs: Int64 = 0
    public var partitionsCleaned: Int64 = 0
    public var recordsRemoved: Int64 = 0
    public var failures: Int64 = 0
    /// Duration of the last pass that cleaned something, in seconds.
    public var lastRunSeconds: Double = 0

    public init() {}
}

/// The log cleaner: one background thread that, every `backoffMillis`, cleans each
/// compacted partition whose clean is due (`PartitionLog.clean`), one at a time, paced
/// by the I/O throttle. ``runOnce(now:force:)`` does a pass on the caller's thread (tests,
/// the admin trigger).
public final class LogCleaner: Sendable {
    public let config: LogCleanerConfig
    private let storage: LogManager
    private let throttle: CleanerThrottle?
    private let queue = DispatchQueue(label: "spool.storage.cleaner")
    private let timer = Mutex<TimerBox?>(nil)
    private let counters = Mutex(LogCleanerStats())
    /// One pass at a time (the timer's and an admin trigger's).
    private let passLock = Mutex(())

    public init(storage: LogManager, config: LogCleanerConfig = LogCleanerConfig()) {
        self.storage = storage
        self.config = config
        throttle = config.ioMaxBytesPerSecond.isFinite ? CleanerThrottle(bytesPerSecond: config.ioMaxBytesPerSecond) : nil
    }

    public var stats: LogCleanerStats { counters.withLock { $0 } }

    /// Starts the periodic passes.
    public func start() {
        guard config.enabled else { return }
        let source = DispatchSource.makeTimerSource(queue: queue)
        let every = max(10, Int(min(config.backoffMillis, Int64(Int32.max))))
        source.schedule(deadline: .now() + .milliseconds(every), repeating: .milliseconds(every))
        source.setEventHandler { [self] in _ = runOnce(now: PartitionLog.wallClockMillis()) }
        source.resume()
        timer.withLock { $0 = TimerBox(source: source) }
    }

    /// Stops the periodic passes (a pass under way finishes).
    public func stop() {
        timer.withLock { $0?.source.cancel(); $0 = nil }
        queue.sync {}
    }

    /// One pass: cleans every compacted partition whose clean is due (every compacted one
    /// with `force`). Returns the partitions cleaned.
    @discardableResult
    public func runOnce(now: Int64, force: Bool = false, topic: String? = nil) -> Int {
        passLock.withLock { _ in
            let started = monotonicNanos()
            let logs = storage.logs.withLock { Array($0.values) }
                .filter { topic == nil || $0.topic == topic }
                .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
            var cleaned = 0
            for log in logs where log.isOpen && log.config.cleanupPolicy.compact {
                do {
                    guard let result = try log.clean(now: now, force: force, throttle: throttle, keyMapBytesMax: config.dedupeBufferBytes) else { continue }
                    cleaned += 1
                    counters.withLock { c in
                        c.bytesRead += result.bytesRead
                        c.bytesWritten += result.bytesWritten
                        c.partitionsCleaned += 1
                        c.recordsRemoved += result.recordsRemoved
                    }
                } catch {
                    counters.withLock { $0.failures += 1 }
                }
            }
            counters.withLock { c in
                c.runs += 1
                if cleaned > 0 { c.lastRunSeconds = Double(monotonicNanos() - started) / 1e9 }
            }
            return cleaned
        }
    }
}

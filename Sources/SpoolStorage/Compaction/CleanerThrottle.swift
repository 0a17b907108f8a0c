#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Paces the log cleaner's I/O to `log.cleaner.io.max.bytes.per.second` (read and
/// written bytes together): after each chunk, sleeps until the bytes so far fit the rate.
public final class CleanerThrottle: Sendable {
    /// Longest single sleep, so that a stop request is seen soon.
    static let maxSleepMillis: Int64 = 1000

    public let bytesPerSecond: Double
    private let window = Mutex<(startNanos: Int64, bytes: Int64)>((0, 0))

    public init(bytesPerSecond: Double) {
        precondition(bytesPerSecond > 0, "a throttle needs a positive rate")
        self.bytesPerSecond = bytesPerSecond
    }

    /// Starts a new measuring window (one per clean).
    public func reset() { window.withLock { $0 = (monotonicNanos(), 0) } }

    /// Counts `bytes` and sleeps as long as the rate needs.
    public func paced(_ bytes: Int) {
        guard bytesPerSecond.isFinite && bytesPerSecond < 1e15 else { return }
        var sleepNanos = window.withLock { w -> Int64 in
            if w.startNanos == 0 { w.startNanos = monotonicNanos() }
            w.bytes += Int64(bytes)
            let due = Double(w.bytes) / bytesPerSecond * 1e9
            return Int64(due) - (monotonicNanos() - w.startNanos)
        }
        while sleepNanos > 0 {
            let slice = min(sleepNanos, Self.maxSleepMillis * 1_000_000)
            var ts = timespec(tv_sec: Int(slice / 1_000_000_000), tv_nsec: Int(slice % 1_000_000_000))
            nanosleep(&ts, nil)
            sleepNanos -= slice
        }
    }
}

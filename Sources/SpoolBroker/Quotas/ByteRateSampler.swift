/// A byte rate measured as Kafka's quota sensors measure it: `samples` windows of
/// `windowMillis` each (Kafka's `quota.window.num` 11 and `quota.window.size.seconds` 1);
/// the rate is the bytes in the live windows over their elapsed time, where a young
/// sensor counts as if `samples - 1` whole windows had passed (so the first burst of a
/// new client is not judged over a few milliseconds).
struct ByteRateSampler: Sendable {
    let samples: Int
    let windowMillis: Int64
    /// (window start, bytes) per live window, oldest first; at most `samples`.
    private var windows: [(start: Int64, bytes: Int64)] = []
    /// When bytes were last recorded (for expiring idle sensors).
    private(set) var lastRecordMillis: Int64 = 0

    init(samples: Int, windowMillis: Int64) {
        precondition(samples >= 2 && windowMillis > 0, "a rate needs two or more windows of positive length")
        self.samples = samples
        self.windowMillis = windowMillis
    }

    mutating func record(_ bytes: Int64, now: Int64) {
        expire(now: now)
        if let last = windows.last, now < last.start + windowMillis {
            windows[windows.count - 1].bytes += bytes
        } else {
            windows.append((now, bytes))
            if windows.count > samples { windows.removeFirst(windows.count - samples) }
        }
        lastRecordMillis = now
    }

    /// Bytes per second now.
    mutating func rate(now: Int64) -> Double {
        expire(now: now)
        let total = windows.reduce(0) { $0 + $1.bytes }
        return Double(total) / (Double(elapsedMillis(now: now)) / 1000)
    }

    /// The time the rate is taken over (Kafka's `Rate.windowSize`), milliseconds.
    func elapsedMillis(now: Int64) -> Int64 {
        var elapsed = now - (windows.first?.start ?? now)
        let whole = elapsed / windowMillis
        if whole < Int64(samples - 1) { elapsed += (Int64(samples - 1) - whole) * windowMillis }
        return max(elapsed, 1)
    }

    /// Drops windows that ended more than `samples` windows ago.
    private mutating func expire(now: Int64) {
        let horizon = now - Int64(samples) * windowMillis
        while let first = windows.first, first.start + windowMillis <= horizon { windows.removeFirst() }
    }
}

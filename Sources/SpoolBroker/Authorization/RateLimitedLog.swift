import Synchronization

/// Lets at most `linesPerSecond` log lines through in each one-second window and counts
/// the rest, so a client hammering a refused resource (or a password guesser) cannot flood
/// the log. The first line let through after a suppression says how many were dropped.
///
/// ```swift
/// let limit = RateLimitedLog(linesPerSecond: 10)
/// if let dropped = limit.admit() { logger.info("denied", metadata: ["suppressed": "\(dropped)"]) }
/// ```
public final class RateLimitedLog: Sendable {
    /// Lines let through per window.
    public let linesPerSecond: Int
    static let windowNanos: Int64 = 1_000_000_000

    private struct State {
        var windowStart: Int64 = 0
        var lines = 0
        var suppressed = 0
        var suppressedTotal: Int64 = 0
    }
    private let state = Mutex(State())

    public init(linesPerSecond: Int) {
        precondition(linesPerSecond > 0, "a rate-limited log lets some lines through")
        self.linesPerSecond = linesPerSecond
    }

    /// Nil when this line is to be dropped; else the lines dropped since the last one let through.
    public func admit(nowNanos given: Int64? = nil) -> Int? {
        let nowNanos = given ?? monotonicNanos()
        return state.withLock { s in
            if nowNanos - s.windowStart >= Self.windowNanos {
                s.windowStart = nowNanos
                s.lines = 0
            }
            guard s.lines < linesPerSecond else {
                s.suppressed += 1
                s.suppressedTotal += 1
                return nil
            }
            s.lines += 1
            let dropped = s.suppressed
            s.suppressed = 0
            return dropped
        }
    }

    /// Lines dropped since the start.
    public var suppressedTotal: Int64 { state.withLock { $0.suppressedTotal } }
}

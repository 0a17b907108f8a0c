import NIOConcurrencyHelpers
import SpoolClient

/// The records `spool produce` has sent and not yet reported, in input order.
///
/// Bounds memory and applies backpressure: `reserve()` waits while `limit` records are
/// unreported (the reader stops reading stdin), and a record leaves the window only when
/// it and every record before it are acknowledged, so outcomes print in input order as
/// soon as the front of the window completes.
///
/// With `stopAtFirstFailure`, the first record that fails for good stops the window:
/// `reserve()` returns nil from then on (a waiting one at once), so the reader stops
/// reading input instead of feeding a dead broker one window of records per delivery
/// timeout.
final class AckWindow: Sendable {
    struct State {
        var outcomes: [Result<RecordMetadata, Error>?] // ring of `limit` slots, by line number % limit
        var sent = 0          // lines handed to the producer
        var reported = 0      // lines whose outcome was taken by the reporter
        var finished = false  // no more lines will be sent
        var stopped = false   // a record failed and the window stops at the first failure
        var spaceWaiter: CheckedContinuation<Void, Never>?
        var reportWaiter: CheckedContinuation<Void, Never>?
    }

    let limit: Int
    let stopAtFirstFailure: Bool
    private let state: NIOLockedValueBox<State>

    init(limit: Int, stopAtFirstFailure: Bool = false) {
        precondition(limit > 0)
        self.limit = limit
        self.stopAtFirstFailure = stopAtFirstFailure
        state = NIOLockedValueBox(State(outcomes: Array(repeating: nil, count: limit)))
    }

    /// True once a record failed and the window stops at the first failure.
    var isStopped: Bool { state.withLockedValue { $0.stopped } }

    /// Waits for a free slot; returns the line number of the record about to be sent,
    /// or nil once the window stopped.
    func reserve() async -> Int? {
        while true {
            let line = state.withLockedValue { s -> Int?? in
                if s.stopped { return .some(nil) }
                guard s.sent - s.reported < limit else { return nil }
                defer { s.sent += 1 }
                return s.sent
            }
            if let line { return line }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLockedValue { s -> Bool in
                    if s.stopped || s.sent - s.reported < limit { return true }
                    s.spaceWaiter = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    /// Records line `line`'s outcome (called from the producer's completion).
    func complete(_ line: Int, _ result: Result<RecordMetadata, Error>) {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            assert(line >= s.reported && line < s.sent, "outcome for a line outside the window")
            s.outcomes[line % limit] = result
            var waiters: [CheckedContinuation<Void, Never>] = []
            if case .failure = result, stopAtFirstFailure, !s.stopped {
                s.stopped = true
                if let w = s.spaceWaiter { waiters.append(w) }
                s.spaceWaiter = nil
            }
            if line == s.reported, let w = s.reportWaiter {
                s.reportWaiter = nil
                waiters.append(w)
            }
            return waiters
        }
        for w in waiters { w.resume() }
    }

    /// No more lines will be sent.
    func finish() {
        let waiter = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            s.finished = true
            defer { s.reportWaiter = nil }
            return s.reportWaiter
        }
        waiter?.resume()
    }

    /// The next outcomes in input order (waits for the front one); empty once finished and drained.
    func nextReady() async -> [Result<RecordMetadata, Error>] {
        while true {
            let (ready, done, space) = state.withLockedValue { s -> ([Result<RecordMetadata, Error>], Bool, CheckedContinuation<Void, Never>?) in
                var ready: [Result<RecordMetadata, Error>] = []
                while s.reported < s.sent, let r = s.outcomes[s.reported % limit] {
                    ready.append(r)
                    s.outcomes[s.reported % limit] = nil
                    s.reported += 1
                }
                var space: CheckedContinuation<Void, Never>?
                if !ready.isEmpty, let w = s.spaceWaiter {
                    s.spaceWaiter = nil
                    space = w
                }
                return (ready, s.finished && s.reported == s.sent, space)
            }
            space?.resume()
            if !ready.isEmpty || done { return ready }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { s -> Bool in
                    if (s.reported < s.sent && s.outcomes[s.reported % limit] != nil) || (s.finished && s.reported == s.sent) { return true }
                    s.reportWaiter = c
                    return false
                }
                if now { c.resume() }
            }
        }
    }
}

import NIOConcurrencyHelpers
import NIOCore
import SpoolRecords
import SpoolStorage

/// A fetch waiting for data: the long poll behind Fetch in both listeners.
///
/// Planned at once; if the plan holds at least `minBytes` (or an error, or the deadline
/// passed) the future completes. Otherwise it waits for an append to any of its partitions
/// or the deadline, then plans again. Exactly one of "timeout", "append", "cancel" and
/// "finish now" wins each wait, and the winner removes the others, so no wake-up can
/// complete a fetch twice or after it was cancelled.
public final class PendingFetch: Sendable {
    /// The plan, completed on the event loop the fetch was started on.
    public let future: EventLoopFuture<[FetchedPartition]>

    private struct Wait {
        var tokens: [(TopicPartition, UInt64)] = []
        var timeout: Scheduled<Void>?
    }

    private enum Phase {
        case planning
        case waiting(Wait)
        case done
    }

    private let broker: Broker
    private let spec: FetchSpec
    private let deadline: NIODeadline
    private let eventLoop: EventLoop
    private let promise: EventLoopPromise<[FetchedPartition]>
    private let phase = NIOLockedValueBox<Phase>(.planning)
    /// Answer with what there is at the next planning, whatever `minBytes` says.
    private let answerNow = NIOLockedValueBox(false)

    init(broker: Broker, spec: FetchSpec, eventLoop: EventLoop) {
        self.broker = broker
        self.spec = spec
        self.eventLoop = eventLoop
        self.deadline = .now() + .milliseconds(spec.maxWaitMillis)
        self.promise = eventLoop.makePromise(of: [FetchedPartition].self)
        self.future = promise.futureResult
    }

    /// Stops waiting: the future fails with `BrokerError.cancelled` (unless it completed already).
    public func cancel() {
        let previous = phase.withLockedValue { p -> Phase in
            defer { p = .done }
            return p
        }
        switch previous {
        case .waiting(let wait):
            release(wait)
            promise.fail(BrokerError(.cancelled, "the fetch was cancelled"))
        case .planning:
            // `attempt` sees `.done`, releases what it registered and completes nothing.
            promise.fail(BrokerError(.cancelled, "the fetch was cancelled"))
        case .done:
            break
        }
    }

    /// Stops waiting and answers with whatever the log holds now (used while draining).
    public func finishNow() {
        answerNow.withLockedValue { $0 = true }
        wakeUp()
    }

    /// Ends the current wait (if one is armed) and plans again.
    private func wakeUp() {
        if let wait = claim() {
            release(wait)
            eventLoop.execute { self.attempt() }
        }
    }

    /// Plans; answers or waits. Runs on `eventLoop`.
    func attempt() {
        eventLoop.preconditionInEventLoop()
        // Each partition's log end before planning: an append that lands between planning
        // and registering the waiters shows as a larger end below.
        let endsBeforePlan = spec.partitions.map { logEnd($0.topicPartition) }
        let planned = broker.plan(spec)
        let bytes = planned.reduce(0) { $0 + $1.spanBytes }
        // An error or a follower's diverging epoch is answered at once.
        let failed = planned.contains { $0.error != nil || $0.divergingEpoch != nil }
        if failed || answerNow.withLockedValue({ $0 }) || deadline <= .now() || bytes >= max(1, spec.minBytes) {
            let finished = phase.withLockedValue { p -> Bool in
                if case .done = p { return false }
                p = .done
                return true
            }
            if finished { promise.succeed(planned) }
            return
        }
        let notifier = broker.notifier
        var tokens: [(TopicPartition, UInt64)] = []
        let wake: @Sendable () -> Void = { [self] in wakeUp() }
        for p in spec.partitions {
            tokens.append((p.topicPartition, notifier.register(p.topicPartition, wake)))
        }
        let timeout = eventLoop.scheduleTask(deadline: deadline, wake)
        let armed = phase.withLockedValue { p -> Bool in
            guard case .planning = p else { return false }
            p = .waiting(Wait(tokens: tokens, timeout: timeout))
            return true
        }
        guard armed else {
            // Cancelled while planning.
            release(Wait(tokens: tokens, timeout: timeout))
            return
        }
        // An append may have landed between planning and registering (with or without
        // bytes planned already: it may be what makes `minBytes`).
        let arrived = zip(spec.partitions, endsBeforePlan).contains { p, before in logEnd(p.topicPartition) > before }
        if arrived || answerNow.withLockedValue({ $0 }) { wake() }
    }

    /// The partition's log end offset, or -1 if it does not exist.
    private func logEnd(_ tp: TopicPartition) -> Int64 {
        (try? broker.storage.partition(tp).endOffset) ?? -1
    }

    /// Takes the armed wait for the caller (who then plans again); nil if none is armed.
    private func claim() -> Wait? {
        phase.withLockedValue { p -> Wait? in
            guard case .waiting(let wait) = p else { return nil }
            p = .planning
            return wait
        }
    }

    private func release(_ wait: Wait) {
        wait.timeout?.cancel()
        for (tp, token) in wait.tokens { broker.notifier.cancel(tp, token) }
    }
}

import NIOConcurrencyHelpers
import SpoolRecords
import SpoolStorage

/// Wakes long-polling fetches and subscriptions when a partition gets new data.
///
/// Waiters register a one-shot callback per partition; `notify` runs (and drops)
/// every callback of that partition. Callbacks hop to their own event loop.
final class AppendNotifier: Sendable {
    private let waiters = NIOLockedValueBox<[TopicPartition: [UInt64: @Sendable () -> Void]]>([:])
    private let ids = NIOLockedValueBox<UInt64>(0)

    /// Registers `callback` for the next append to `tp`; returns a token to cancel it.
    func register(_ tp: TopicPartition, _ callback: @escaping @Sendable () -> Void) -> UInt64 {
        let id = ids.withLockedValue { $0 += 1; return $0 }
        waiters.withLockedValue { $0[tp, default: [:]][id] = callback }
        return id
    }

    func cancel(_ tp: TopicPartition, _ id: UInt64) {
        waiters.withLockedValue { w in
            w[tp]?.removeValue(forKey: id)
            if w[tp]?.isEmpty == true { w.removeValue(forKey: tp) }
        }
    }

    /// Callbacks registered and not yet run or cancelled.
    var count: Int { waiters.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }

    func notify(_ tp: TopicPartition) {
        let callbacks = waiters.withLockedValue { $0.removeValue(forKey: tp) }
        callbacks?.values.forEach { $0() }
    }

    func notifyAll() {
        let all = waiters.withLockedValue { w -> [[UInt64: @Sendable () -> Void]] in
            defer { w.removeAll() }
            return Array(w.values)
        }
        for callbacks in all { callbacks.values.forEach { $0() } }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolRecords
import SpoolStorage

/// Runs blocking storage work off the event loops.
///
/// A bounded pool of I/O threads (`BrokerConfig.ioThreads`) serves two kinds of work:
/// per-partition work (appends and the accumulator's compression), which runs one item at
/// a time per partition in the order it was submitted, so a partition's batches reach its
/// log in the order the listeners handed them over; and unordered work (admin calls,
/// metadata rewrites, commits).
///
/// ```swift
/// let result = executor.run(tp, on: eventLoop) { try log.append(&batch) }   // EventLoopFuture
/// ```
public final class PartitionExecutor: Sendable {
    /// Most items one partition runs before yielding its thread to other partitions.
    static let itemsPerTurnMax = 64

    private struct Queue {
        var items: [@Sendable () -> Void] = []
        var scheduled = false
    }

    private let pool: NIOThreadPool
    private let queues = NIOLockedValueBox<[TopicPartition: Queue]>([:])

    public init(threads: Int) {
        precondition(threads > 0, "the I/O pool needs at least one thread")
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// Queues `work` behind everything already queued for `tp`.
    public func submit(_ tp: TopicPartition, _ work: @escaping @Sendable () -> Void) {
        let schedule = queues.withLockedValue { all -> Bool in
            all[tp, default: Queue()].items.append(work)
            if all[tp]!.scheduled { return false }
            all[tp]!.scheduled = true
            return true
        }
        if schedule { pool.submit { [self] _ in drain(tp) } }
    }

    /// Runs `body` in `tp`'s order on the pool; the future completes on `eventLoop`.
    public func run<T: Sendable>(_ tp: TopicPartition, on eventLoop: EventLoop, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        let promise = eventLoop.makePromise(of: T.self)
        submit(tp) { promise.completeWith(Result { try body() }) }
        return promise.futureResult
    }

    /// Runs `body` on the pool, unordered with respect to partition work.
    public func run<T: Sendable>(on eventLoop: EventLoop, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        pool.runIfActive(eventLoop: eventLoop, body)
    }

    /// Runs `body` on the pool from async code.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    private func drain(_ tp: TopicPartition) {
        let batch = queues.withLockedValue { all -> [@Sendable () -> Void] in
            let items = all[tp]!.items.prefix(Self.itemsPerTurnMax)
            all[tp]!.items.removeFirst(items.count)
            return Array(items)
        }
        for work in batch { work() }
        let more = queues.withLockedValue { all -> Bool in
            if all[tp]!.items.isEmpty {
                all.removeValue(forKey: tp)
                return false
            }
            return true
        }
        // Yield between turns so one busy partition cannot hold a thread forever.
        if more { pool.submit { [self] _ in drain(tp) } }
    }

    /// Whether every partition queue is empty and no partition work is running.
    var isIdle: Bool { queues.withLockedValue { $0.isEmpty } }

    /// Finishes queued work and stops the threads. Partition work queued before the call
    /// has run when it returns: the pool's own shutdown hands queued items over as
    /// "cancelled" and may return before they ran, so the queues are waited out first.
    public func shutdown() async throws {
        let deadline = ContinuousClock.now + Self.shutdownWaitMax
        while !isIdle && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
        try await pool.shutdownGracefully()
    }

    /// `shutdown()` for callers that cannot await, blocking the caller (never an event loop).
    public func syncShutdown() throws {
        let deadline = ContinuousClock.now + Self.shutdownWaitMax
        while !isIdle && ContinuousClock.now < deadline {
            usleep(1_000)
        }
        try pool.syncShutdownGracefully()
    }

    /// Longest a shutdown waits for queued partition work (a stuck disk must not hang it forever).
    static let shutdownWaitMax: Duration = .seconds(60)
}

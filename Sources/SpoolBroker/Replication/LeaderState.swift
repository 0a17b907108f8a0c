import NIOCore
import SpoolRecords
import SpoolStorage
import Synchronization

/// What the leader of one replicated partition tracks (Kafka's `Partition` on the leader):
/// each follower's log end and when it was last caught up, the high watermark, the ISR
/// proposals in flight, and the acks=all produce requests waiting for the high watermark.
///
/// Rules (CLUSTER.md):
/// - HW = min log end over the ISR (the leader's own log end included); it does not move
///   while the ISR is smaller than min(`min.insync.replicas`, replication factor).
/// - A follower is caught up at a fetch whose offset reached the leader's log end; one at
///   or past the log end as it was at the previous fetch is credited with that fetch's time.
/// - Shrink: ISR followers not caught up within `replica.lag.time.max.ms`. Expand: a
///   follower whose log end is ≥ HW and ≥ the start of the current leader epoch.
/// - ISR changes go through `ReplicationDelegate.proposeISR`, one in flight at a time.
final class LeaderState: Sendable {
    let topicPartition: TopicPartition
    let log: PartitionLog
    let nodeId: Int32
    let epoch: Int32
    /// Where the current leader epoch starts in the log (the log end at election).
    let epochStartOffset: Int64
    let lagTimeMaxMillis: Int64

    struct Follower {
        /// The follower's log end (its last fetch offset); -1 until it fetched.
        var logEnd: Int64 = -1
        var lastCaughtUpMillis: Int64
        var lastFetchMillis: Int64 = 0
        /// The leader's log end at the follower's previous fetch.
        var leaderEndAtLastFetch: Int64 = -1
    }

    struct Waiter {
        var id: UInt64
        /// The HW the request needs (its last offset + 1).
        var offset: Int64
        var promise: EventLoopPromise<Void>
    }

    struct State {
        var replica: ReplicaState
        var followers: [Int32: Follower]
        var proposing = false
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var deposed = false
    }

    private let state: Mutex<State>

    init(_ tp: TopicPartition, log: PartitionLog, nodeId: Int32, replica: ReplicaState, lagTimeMaxMillis: Int64, now: Int64) {
        topicPartition = tp
        self.log = log
        self.nodeId = nodeId
        epoch = replica.leaderEpoch
        epochStartOffset = log.endOffset
        self.lagTimeMaxMillis = lagTimeMaxMillis
        var followers: [Int32: Follower] = [:]
        // A follower already in the ISR counts as caught up at election (Kafka does the same).
        for r in replica.replicas where r != nodeId { followers[r] = Follower(lastCaughtUpMillis: now) }
        state = Mutex(State(replica: replica, followers: followers))
    }

    /// min(`min.insync.replicas`, replication factor).
    func effectiveMinISR(_ replica: ReplicaState) -> Int {
        max(1, min(log.config.minInsyncReplicas, replica.replicas.count))
    }

    var replica: ReplicaState { state.withLock { $0.replica } }
    var isDeposed: Bool { state.withLock { $0.deposed } }

    /// Whether the ISR is below the minimum (acks=all refused before the append).
    var isrBelowMin: Bool { state.withLock { $0.replica.isr.count < effectiveMinISR($0.replica) } }

    /// A follower's fetch at `offset` (its log end): credits it, moves the HW, and returns
    /// the ISR to propose when the follower should join it.
    func recordFetch(from node: Int32, offset: Int64, now: Int64) -> [Int32]? {
        let leaderEnd = log.endOffset
        let (expand, released) = state.withLock { s -> ([Int32]?, [Waiter]) in
            guard !s.deposed, var f = s.followers[node] else { return (nil, []) }
            if offset >= leaderEnd {
                f.lastCaughtUpMillis = now
            } else if f.leaderEndAtLastFetch >= 0 && offset >= f.leaderEndAtLastFetch {
                f.lastCaughtUpMillis = max(f.lastCaughtUpMillis, f.lastFetchMillis)
            }
            f.logEnd = offset
            f.lastFetchMillis = now
            f.leaderEndAtLastFetch = leaderEnd
            s.followers[node] = f
            let released = advance(&s)
            var expand: [Int32]?
            // Only an assigned replica may join (a replica reassigned away may still fetch for a moment).
            if s.replica.replicas.contains(node), !s.replica.isr.contains(node), !s.proposing, offset >= log.highWatermark,
               offset >= epochStartOffset {
                expand = s.replica.isr + [node]
            }
            return (expand, released)
        }
        for w in released { w.promise.succeed() }
        return expand
    }

    /// After the leader's own append: the ISR may be the leader alone.
    func appended() {
        let released = state.withLock { advance(&$0) }
        for w in released { w.promise.succeed() }
    }

    /// Moves the HW to the min log end over the ISR (never back), when the ISR is large
    /// enough; returns the waiters it releases.
    private func advance(_ s: inout State) -> [Waiter] {
        guard !s.deposed, s.replica.isr.count >= effectiveMinISR(s.replica) else { return [] }
        var hw = log.endOffset
        for node in s.replica.isr where node != nodeId {
            guard let f = s.followers[node], f.logEnd >= 0 else { return [] }
            hw = min(hw, f.logEnd)
        }
        log.setHighWatermark(hw)
        let now = log.highWatermark
        var released: [Waiter] = []
        s.waiters.removeAll { w in
            if w.offset <= now { released.append(w); return true }
            return false
        }
        return released
    }

    /// Each follower's lag behind the log end (records; the whole log before its first
    /// fetch) and since it was last caught up (ms); empty once deposed.
    func followerLags(now: Int64) -> [(node: Int32, records: Int64, millis: Int64)] {
        let end = log.endOffset
        return state.withLock { s in
            guard !s.deposed else { return [] }
            return s.followers.sorted { $0.key < $1.key }.map { node, f in
                (node, max(0, end - max(0, f.logEnd)), max(0, now - f.lastCaughtUpMillis))
            }
        }
    }

    /// The ISR to propose without the followers that lagged too long, nil when none did.
    func shrinkCandidate(now: Int64) -> [Int32]? {
        state.withLock { s in
            guard !s.deposed, !s.proposing else { return nil }
            let lagging = s.replica.isr.filter { node in
                node != nodeId && (s.followers[node].map { now - $0.lastCaughtUpMillis > lagTimeMaxMillis } ?? true)
            }
            return lagging.isEmpty ? nil : s.replica.isr.filter { !lagging.contains($0) }
        }
    }

    /// Marks a proposal in flight; false when one already is.
    func beginProposal() -> Bool {
        state.withLock { s in
            if s.proposing || s.deposed { return false }
            s.proposing = true
            return true
        }
    }

    func endProposal() {
        state.withLock { $0.proposing = false }
    }

    /// A newer record of the same leader epoch (an ISR change): the HW moves, or, when the
    /// ISR fell below the minimum, the waiters fail (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    func update(_ replica: ReplicaState, now: Int64) {
        let (released, failed) = state.withLock { s -> ([Waiter], [Waiter]) in
            for node in replica.replicas where node != nodeId && s.followers[node] == nil {
                s.followers[node] = Follower(lastCaughtUpMillis: now)
            }
            s.replica = replica
            if replica.isr.count < effectiveMinISR(replica) {
                let failed = s.waiters
                s.waiters.removeAll()
                return ([], failed)
            }
            return (advance(&s), [])
        }
        for w in released { w.promise.succeed() }
        for w in failed {
            w.promise.fail(BrokerError(.notEnoughReplicasAfterAppend,
                "the ISR of \(topicPartition) shrank to \(replica.isr) before the records were replicated"))
        }
    }

    /// Waits until the HW passes `offset` (an acks=all request's last offset + 1), failing
    /// after `timeoutMillis` with REQUEST_TIMED_OUT.
    func waitForHighWatermark(_ offset: Int64, timeoutMillis: Int64, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let id = state.withLock { s -> UInt64? in
            if s.deposed { return nil }
            if log.highWatermark >= offset { return nil }
            if s.replica.isr.count < effectiveMinISR(s.replica) { return UInt64.max }
            s.nextWaiter += 1
            s.waiters.append(Waiter(id: s.nextWaiter, offset: offset, promise: promise))
            return s.nextWaiter
        }
        guard let id else {
            if isDeposed {
                promise.fail(BrokerError(.notLeaderOrFollower, "this broker no longer leads \(topicPartition)"))
            } else {
                promise.succeed()
            }
            return promise.futureResult
        }
        if id == UInt64.max {
            promise.fail(BrokerError(.notEnoughReplicasAfterAppend, "the ISR of \(topicPartition) is below min.insync.replicas"))
            return promise.futureResult
        }
        let timeout = eventLoop.scheduleTask(in: .milliseconds(timeoutMillis)) { [self] in
            let expired = state.withLock { s -> Waiter? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i)
            }
            expired?.promise.fail(BrokerError(.requestTimedOut,
                "records of \(topicPartition) up to offset \(offset - 1) were not replicated within \(timeoutMillis) ms"))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        return promise.futureResult
    }

    /// This broker stops leading: every waiter fails with NOT_LEADER_OR_FOLLOWER.
    func depose() {
        let failed = state.withLock { s -> [Waiter] in
            s.deposed = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in failed { w.promise.fail(BrokerError(.notLeaderOrFollower, "this broker no longer leads \(topicPartition)")) }
    }

    /// Followers' lag for metrics and tests: node → log end (-1 before the first fetch).
    var followerLogEnds: [Int32: Int64] { state.withLock { $0.followers.mapValues(\.logEnd) } }
}

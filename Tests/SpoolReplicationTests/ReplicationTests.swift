import Foundation
import NIOCore
@testable import SpoolBroker
import SpoolRecords
import SpoolReplication
@testable import SpoolStorage
import Testing

/// Replication over real sockets: three in-process brokers, followers fetching from the
/// leader with Kafka Fetch v12 (SpoolReplication), an in-memory cluster layer. RF 3, min ISR 2,
/// replica.lag.time.max.ms 10 s (1 s in the tests that wait for a shrink). Every wait is bounded.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ReplicationTests {
    @Test func acksAllRecordsAreOnEveryReplicaAtTheSameOffsetsWithIdenticalBytes() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        var last: Int64 = -1
        for i in 0..<20 {
            let r = try await c.produce(1, ReplicationCluster.batch("r\(i)"), acks: .all)
            #expect(r.error == nil, "\(String(describing: r.error))")
            #expect(r.baseOffset == last + 1)
            last = r.lastOffset
            // Acknowledged means replicated to the ISR: the HW is past it.
            #expect(try c.log(1).highWatermark > r.lastOffset)
        }
        #expect(await c.eventually { try c.log(2).endOffset == 60 && c.log(3).endOffset == 60 })
        let leaderBytes = try c.bytes(1)
        #expect(try c.bytes(2) == leaderBytes)
        #expect(try c.bytes(3) == leaderBytes)
        // The leader stamped its epoch; every replica knows where it starts.
        for node: Int32 in [1, 2, 3] {
            #expect(try c.log(node).leaderEpochs == [.init(epoch: 1, startOffset: 0)])
        }
        await c.stop()
    }

    @Test func consumersReadOnlyBelowTheHighWatermark() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("acked"), acks: .all)
        #expect(try c.log(1).highWatermark == 3)
        c.fetchers[2]!.paused = true
        c.fetchers[3]!.paused = true
        try await Task.sleep(for: .milliseconds(100))
        let r = try await c.produce(1, ReplicationCluster.batch("unreplicated"), acks: .leader)
        #expect(r.error == nil && r.baseOffset == 3)
        #expect(try c.log(1).endOffset == 6 && c.log(1).highWatermark == 3)
        let atHW = try await c.consumerFetch(1, offset: 3)
        #expect(atHW.spanBytes == 0 && atHW.highWatermark == 3)
        let fromStart = try await c.consumerFetch(1, offset: 0)
        #expect(fromStart.nextOffset == 3)
        #expect(try c.brokers[1]!.listOffset(c.tp, .latest).offset == 3)
        c.fetchers[2]!.paused = false
        c.fetchers[3]!.paused = false
        #expect(await c.eventually { try c.log(1).highWatermark == 6 })
        #expect(try await c.consumerFetch(1, offset: 3).nextOffset == 6)
        await c.stop()
    }

    @Test func aPausedFollowerLeavesTheISRAfterTheLagTimeAndRejoinsOnceCaughtUp() async throws {
        let c = try await ReplicationCluster.start(lagMillis: 1000)
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("a"), acks: .all)
        c.fetchers[3]!.paused = true
        let pausedAt = Date()
        // Steady writes: the ISR keeps the leader and follower 2 only.
        var i = 0
        while c.cluster.state(c.tp)?.isr.contains(3) == true && Date().timeIntervalSince(pausedAt) < 10 {
            let r = try await c.produce(1, ReplicationCluster.batch("w\(i)"), acks: .all)
            #expect(r.error == nil, "\(String(describing: r.error))")
            i += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        let shrunkAfter = Date().timeIntervalSince(pausedAt)
        #expect(c.cluster.state(c.tp)?.isr.sorted() == [1, 2])
        #expect(shrunkAfter >= Double(c.lagMillis) / 1000 * 0.9, "shrunk after \(shrunkAfter) s")
        // With ISR {1, 2} ≥ min ISR 2, acks=all goes on.
        #expect(try await c.produce(1, ReplicationCluster.batch("more"), acks: .all).error == nil)
        // The leader counted the shrink and reports the paused follower's lag on scrape.
        let leaderMetrics = c.metrics[1]!
        // (The cluster's record changes inside the proposal; the leader counts it on the answer.)
        #expect(await c.eventually { (try? leaderMetrics.expectCounter("spool_isr_shrinks_total").totalValue) == 1 })
        c.brokers[1]!.collectMetrics(groups: [])
        let lagDims = [("topic", "t"), ("partition", "0"), ("follower", "3")]
        #expect(try leaderMetrics.expectGauge("spool_follower_lag_records", lagDims).lastValue ?? 0 >= Double(i))
        #expect(try leaderMetrics.expectGauge("spool_follower_lag_seconds", lagDims).lastValue ?? 0 >= 1)
        #expect(try leaderMetrics.expectGauge("spool_follower_lag_records", [("topic", "t"), ("partition", "0"), ("follower", "2")]).lastValue ?? 1 < Double(i))
        c.fetchers[3]!.paused = false
        #expect(await c.eventually { c.cluster.state(c.tp)?.isr.sorted() == [1, 2, 3] })
        #expect(try c.bytes(3) == c.bytes(1))
        #expect(await c.eventually { (try? leaderMetrics.expectCounter("spool_isr_expands_total").totalValue) == 1 })
        await c.stop()
    }

    @Test func twoPausedFollowersMakeAcksAllFailWithNotEnoughReplicasAndNothingIsAppended() async throws {
        let c = try await ReplicationCluster.start(lagMillis: 1000)
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("a"), acks: .all)
        c.fetchers[2]!.paused = true
        c.fetchers[3]!.paused = true
        #expect(await c.eventually { c.cluster.state(c.tp)?.isr == [1] })
        let end = try c.log(1).endOffset
        let r = try await c.produce(1, ReplicationCluster.batch("refused"), acks: .all)
        #expect((r.error as? BrokerError)?.code == .notEnoughReplicas)
        #expect(try c.log(1).endOffset == end)
        // acks=1 still appends; a follower of the partition refuses produce.
        #expect(try await c.produce(1, ReplicationCluster.batch("one"), acks: .leader).error == nil)
        #expect((try await c.produce(2, ReplicationCluster.batch("x"), acks: .leader).error as? BrokerError)?.code == .notLeaderOrFollower)
        await c.stop()
    }

    @Test func acksAllTimesOutWhenTheISRDoesNotReplicateInTime() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("a"), acks: .all)
        c.fetchers[2]!.paused = true
        c.fetchers[3]!.paused = true
        try await Task.sleep(for: .milliseconds(50))
        let started = Date()
        let r = try await c.produce(1, ReplicationCluster.batch("slow"), acks: .all, timeoutMillis: 300)
        // Either the timeout or the ISR shrinking below min first (the lag time is 1 s).
        #expect((r.error as? BrokerError)?.code == .requestTimedOut || (r.error as? BrokerError)?.code == .notEnoughReplicasAfterAppend, "\(String(describing: r.error))")
        #expect(Date().timeIntervalSince(started) < 3)
        await c.stop()
    }

    @Test func aLeaderChangeTruncatesTheOldLeadersUnreplicatedTail() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("common"), acks: .all)
        #expect(await c.eventually { try c.log(2).endOffset == 3 && c.log(3).endOffset == 3 })
        c.fetchers[2]!.paused = true
        c.fetchers[3]!.paused = true
        try await Task.sleep(for: .milliseconds(700))  // an answer in flight is dropped
        for i in 0..<3 { _ = try await c.produce(1, ReplicationCluster.batch("divergent\(i)"), acks: .leader) }
        #expect(try c.log(1).endOffset == 12 && c.log(2).endOffset == 3)
        // The controller elects broker 2 at epoch 2.
        let old = c.cluster.state(c.tp)!
        await c.cluster.set(c.tp, ReplicaState(replicas: [1, 2, 3], leader: 2, leaderEpoch: 2, isr: [2, 3],
                                               partitionEpoch: old.partitionEpoch + 1))
        c.fetchers[2]!.paused = false
        c.fetchers[3]!.paused = false
        let r = try await c.produce(2, ReplicationCluster.batch("new-leader", count: 2), acks: .all)
        #expect(r.error == nil && r.baseOffset == 3, "\(r)")
        // Broker 1 follows now: its tail from epoch 1 past offset 3 is cut, then it catches up.
        #expect(await c.eventually { try c.log(1).endOffset == 5 && c.bytes(1) == c.bytes(2) })
        #expect(try c.log(1).leaderEpochs == [.init(epoch: 1, startOffset: 0), .init(epoch: 2, startOffset: 3)])
        #expect(await c.eventually { c.cluster.state(c.tp)?.isr.sorted() == [1, 2, 3] })
        // The old leader refuses produce and consumer reads now.
        #expect((try await c.produce(1, ReplicationCluster.batch("stale"), acks: .all).error as? BrokerError)?.code == .notLeaderOrFollower)
        #expect(try await c.consumerFetch(1, offset: 0).error?.code == .notLeaderOrFollower)
        await c.stop()
    }

    @Test func staleAndNewerLeaderEpochsAreFenced() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("a"), acks: .all)
        #expect(try await c.consumerFetch(1, offset: 0, currentLeaderEpoch: 0).error?.code == .fencedLeaderEpoch)
        #expect(try await c.consumerFetch(1, offset: 0, currentLeaderEpoch: 2).error?.code == .unknownLeaderEpoch)
        #expect(try await c.consumerFetch(1, offset: 0, currentLeaderEpoch: 1).error == nil)
        #expect(try await c.consumerFetch(1, offset: 0, currentLeaderEpoch: -1).nextOffset == 3)
        let broker = c.brokers[1]!
        #expect { try broker.checkLeaderEpoch(c.tp, 0) } throws: { ($0 as? BrokerError)?.code == .fencedLeaderEpoch }
        #expect { _ = try broker.offsetForLeaderEpoch(c.tp, 1, currentLeaderEpoch: 5) } throws: { ($0 as? BrokerError)?.code == .unknownLeaderEpoch }
        #expect(try broker.offsetForLeaderEpoch(c.tp, 1, currentLeaderEpoch: 1) == (1, 3))
        #expect(try broker.offsetForLeaderEpoch(c.tp, 0, currentLeaderEpoch: -1) == (-1, -1))
        #expect { _ = try c.brokers[2]!.offsetForLeaderEpoch(c.tp, 1, currentLeaderEpoch: 1) } throws: { ($0 as? BrokerError)?.code == .notLeaderOrFollower }
        // A state with an older partition epoch is ignored.
        let current = c.cluster.state(c.tp)!
        try await broker.applyReplicaState(c.tp, ReplicaState(replicas: [1, 2, 3], leader: 3, leaderEpoch: 0, isr: [3], partitionEpoch: 0))
        #expect(broker.replicaState(c.tp) == current)
        await c.stop()
    }

    @Test func aNewLeaderAnswersAnIdempotentRetryWithTheOriginalOffsets() async throws {
        let c = try await ReplicationCluster.start()
        defer { Task { await c.stop() } }
        _ = try await c.produce(1, ReplicationCluster.batch("plain"), acks: .all)
        let idempotent = ReplicationCluster.batch("idem", count: 4, pid: 7, sequence: 0)
        let first = try await c.produce(1, idempotent, acks: .all)
        #expect(first.error == nil && first.baseOffset == 3 && first.lastOffset == 6)
        #expect(await c.eventually { try c.log(2).endOffset == 7 })
        let old = c.cluster.state(c.tp)!
        await c.cluster.set(c.tp, ReplicaState(replicas: [1, 2, 3], leader: 2, leaderEpoch: 2, isr: [1, 2, 3],
                                               partitionEpoch: old.partitionEpoch + 1))
        let retry = try await c.produce(2, idempotent, acks: .all)
        #expect(retry.error == nil && retry.baseOffset == 3 && retry.lastOffset == 6, "\(retry)")
        #expect(try c.log(2).endOffset == 7)
        await c.stop()
    }
}

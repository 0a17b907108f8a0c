import Foundation
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
@testable import SpoolStorage
import Testing

/// The leader's bookkeeping with explicit times: crediting, HW over the ISR, shrink and
/// expand candidates, acks=all waiters.
@Suite struct LeaderStateTests {
    final class Fixture {
        let dir = NSTemporaryDirectory() + "spool-leader-" + UUID().uuidString
        let log: PartitionLog
        init(minISR: Int) throws {
            var config = TopicConfig()
            config.minInsyncReplicas = minISR
            log = try PartitionLog(directory: dir + "/t-0", topic: "t", partition: 0, config: config,
                                   files: FileDescriptorCache(capacity: 16), cleanShutdown: true)
            log.setHighWatermark(0)
        }
        func append(_ count: Int) throws {
            var b = RecordBatchBuilder()
            for i in 0..<count { b.append(key: nil, value: ByteBuffer(string: "v\(i)"), timestamp: 1) }
            var bytes = try b.build()
            _ = try log.append(validated: log.validate(bytes), &bytes, leaderEpoch: 1)
        }
        deinit { try? log.close(); try? FileManager.default.removeItem(atPath: dir) }
    }

    static let state = ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1, 2, 3], partitionEpoch: 1)

    @Test func aFollowerUnderSteadyWritesIsCreditedWithItsPreviousFetch() throws {
        let f = try Fixture(minISR: 2)
        let leader = LeaderState(TopicPartition("t", 0), log: f.log, nodeId: 1, replica: Self.state, lagTimeMaxMillis: 1000, now: 0)
        // Every fetch lags the log end by the batch appended meanwhile, but reaches the end
        // as it was at the previous fetch: caught up as of the previous fetch.
        var now: Int64 = 0
        for _ in 0..<30 {
            try f.append(1)
            now += 100
            _ = leader.recordFetch(from: 2, offset: f.log.endOffset - 1, now: now)
            _ = leader.recordFetch(from: 3, offset: 0, now: now)  // never moves
        }
        #expect(leader.shrinkCandidate(now: now) == [1, 2])
        // HW: the min over the ISR {1, 2, 3}, held back by follower 3.
        #expect(f.log.highWatermark == 0)
        leader.update(ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1, 2], partitionEpoch: 2), now: now)
        #expect(f.log.highWatermark == 29)
    }

    @Test func highWatermarkHoldsWhileTheISRIsBelowMinAndExpandNeedsTheHighWatermark() throws {
        let f = try Fixture(minISR: 2)
        let alone = ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1], partitionEpoch: 1)
        let leader = LeaderState(TopicPartition("t", 0), log: f.log, nodeId: 1, replica: alone, lagTimeMaxMillis: 1000, now: 0)
        try f.append(5)
        leader.appended()
        #expect(leader.isrBelowMin && f.log.highWatermark == 0)
        // Follower 2 at 3 < HW? HW is 0: it may join (≥ HW and ≥ the epoch's start 0).
        #expect(leader.recordFetch(from: 2, offset: 3, now: 10) == [1, 2])
        leader.update(ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1, 2], partitionEpoch: 2), now: 10)
        #expect(!leader.isrBelowMin && f.log.highWatermark == 3)
        // Follower 3 below the HW may not join.
        #expect(leader.recordFetch(from: 3, offset: 2, now: 20) == nil)
    }

    @Test func waitersAreReleasedByTheHighWatermarkAndFailedWhenTheISRShrinksOrTheLeaderGoes() async throws {
        let f = try Fixture(minISR: 2)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let leader = LeaderState(TopicPartition("t", 0), log: f.log, nodeId: 1, replica: Self.state, lagTimeMaxMillis: 1000, now: 0)
        try f.append(4)
        let released = leader.waitForHighWatermark(4, timeoutMillis: 5000, on: loop)
        _ = leader.recordFetch(from: 2, offset: 4, now: 1)
        _ = leader.recordFetch(from: 3, offset: 4, now: 1)
        try await released.get()
        try f.append(2)
        let shrunk = leader.waitForHighWatermark(6, timeoutMillis: 5000, on: loop)
        leader.update(ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1], partitionEpoch: 2), now: 2)
        await #expect { try await shrunk.get() } throws: { ($0 as? BrokerError)?.code == .notEnoughReplicasAfterAppend }
        let deposed = leader.waitForHighWatermark(6, timeoutMillis: 5000, on: loop)
        leader.depose()
        await #expect { try await deposed.get() } throws: { ($0 as? BrokerError)?.code == .notLeaderOrFollower || ($0 as? BrokerError)?.code == .notEnoughReplicasAfterAppend }
        let timedOut = LeaderState(TopicPartition("t", 0), log: f.log, nodeId: 1, replica: Self.state, lagTimeMaxMillis: 1000, now: 0)
            .waitForHighWatermark(6, timeoutMillis: 50, on: loop)
        await #expect { try await timedOut.get() } throws: { ($0 as? BrokerError)?.code == .requestTimedOut }
    }
}

import Foundation
import NIOCore
@testable import SpoolClient
import SpoolProtocol
import SpoolRecords
import SpoolTestSupport
import Testing

/// The cluster-aware client's routing, without a cluster: what a Metadata answer means
/// (`ClusterMetadata`), how the producer plans requests per leader (`ProducerState`), and a
/// `BrokerRouter` against a real single broker (bootstrap from a list, the native Metadata call).
@Suite struct RoutingTests {
    static func metadataResponse() -> Spool_V1_MetadataResponse {
        var r = Spool_V1_MetadataResponse()
        r.nodeID = 2
        r.clustered = true
        r.controllerID = 1
        for (id, port) in [(Int32(1), 9001), (2, 9002), (3, 9003)] {
            var b = Spool_V1_BrokerNode()
            b.nodeID = id
            b.nativeAddress = "127.0.0.1:\(port)"
            r.brokers.append(b)
        }
        var t = Spool_V1_TopicMetadata()
        t.name = "orders"
        for (p, leader) in [(Int32(0), Int32(1)), (1, 2), (2, -1)] {
            var pm = Spool_V1_PartitionMetadata()
            pm.partition = p
            pm.leader = leader
            pm.leaderEpoch = 4
            pm.replicas = [1, 2, 3]
            pm.isr = leader < 0 ? [] : [leader]
            if leader < 0 { pm.code = .unavailable }
            t.partitions.append(pm)
        }
        var gone = Spool_V1_TopicMetadata()
        gone.name = "gone"
        gone.code = .notFound
        r.topics = [t, gone]
        return r
    }

    @Test func metadataNamesEachPartitionsLiveLeader() {
        let m = ClusterMetadata(Self.metadataResponse())
        #expect(m.answeredBy == 2 && m.clustered)
        #expect(m.brokers[3] == "127.0.0.1:9003")
        #expect(m.leader(of: TopicPartition("orders", 0)) == 1)
        #expect(m.leader(of: TopicPartition("orders", 1)) == 2)
        #expect(m.leader(of: TopicPartition("orders", 2)) == nil, "no live leader: ask again")
        #expect(m.leader(of: TopicPartition("orders", 3)) == nil && m.partitionCounts["orders"] == 3)
        #expect(m.partitionCounts["gone"] == nil && m.leader(of: TopicPartition("gone", 0)) == nil)

        // A newer answer about another topic keeps "orders"; one about "orders" replaces it.
        var other = ClusterMetadata(answeredBy: 3, clustered: true, brokers: [3: "127.0.0.1:9003"])
        other.partitions[TopicPartition("logs", 0)] = .init(leader: 3, leaderEpoch: 0, replicas: [3], isr: [3])
        other.partitionCounts["logs"] = 1
        let merged = m.merged(with: other)
        #expect(merged.leader(of: TopicPartition("orders", 0)) == 1 && merged.leader(of: TopicPartition("logs", 0)) == 3)
        #expect(merged.brokers == [3: "127.0.0.1:9003"], "brokers are the newest answer's")
        var moved = ClusterMetadata(answeredBy: 3, clustered: true)
        moved.partitions[TopicPartition("orders", 0)] = .init(leader: 3, leaderEpoch: 5, replicas: [1, 2, 3], isr: [2, 3])
        moved.partitionCounts["orders"] = 1
        let replaced = m.merged(with: moved)
        #expect(replaced.leader(of: TopicPartition("orders", 0)) == 3 && replaced.leader(of: TopicPartition("orders", 1)) == nil)
    }

    /// A state with one topic of `partitions` partitions and one closed batch in each.
    static func state(partitions: Int32) -> ProducerState {
        var s = ProducerState()
        let limits = ProducerLimits(config: ProducerConfig(), maxFrameBytes: 16 << 20, maxMessageBytes: 1 << 20)
        let topic = ProducerTopic(name: "orders", partitionCount: partitions, limits: limits, index: 0, owner: ObjectIdentifier(RoutingTests.Owner.shared))
        s.topics.append(.init(handle: topic, partitions: Array(repeating: PartitionQueue(), count: Int(partitions)), sticky: 0))
        s.topicIndex["orders"] = 0
        for p in 0..<partitions { s.addClosedBatch(topic, p) }
        return s
    }

    final class Owner: Sendable { static let shared = Owner() }

    @Test func requestsGoOnePerLeaderAndWaitForALeader() {
        var s = Self.state(partitions: 4)
        var effects = ProducerState.Effects()
        // Partitions 0 and 2 on node 1, 1 on node 2, 3 has no leader yet.
        let leaders: [Int32: Int32] = [0: 1, 1: 2, 2: 1]
        let requests = s.planRequests(maxInFlight: 8, payloadBytesMax: 1 << 20, now: .now(),
                                      route: { _, p in leaders[p] }, effects: &effects)
        #expect(requests.count == 2)
        let byNode = Dictionary(uniqueKeysWithValues: requests.map { ($0.node, $0.entries.map(\.partition).sorted()) })
        #expect(byNode == [1: [0, 2], 2: [1]])
        #expect(effects.needsRoute, "partition 3 waits for a leader")
        #expect(s.waitingPartitions.map(\.partition) == [3], "it stays listed")

        // Its leader becomes known: it goes, alone.
        effects = ProducerState.Effects()
        let next = s.planRequests(maxInFlight: 8, payloadBytesMax: 1 << 20, now: .now(), route: { _, _ in 3 }, effects: &effects)
        #expect(next.map(\.node) == [3] && next.first?.entries.map(\.partition) == [3] && !effects.needsRoute)
    }

    @Test func aNewLeaderGetsAPartitionOnlyOnceItsRequestsToTheOldOneEnded() {
        var s = Self.state(partitions: 1)
        var effects = ProducerState.Effects()
        let first = s.planRequests(maxInFlight: 8, payloadBytesMax: 1 << 20, now: .now(), route: { _, _ in 1 }, effects: &effects)
        #expect(first.map(\.node) == [1])
        // Another batch closes while the first request is out; leadership moves to node 2.
        s.addClosedBatch(s.topics[0].handle, 0)
        let held = s.planRequests(maxInFlight: 8, payloadBytesMax: 1 << 20, now: .now(), route: { _, _ in 2 }, effects: &effects)
        #expect(held.isEmpty, "sent to node 2 now, it could arrive before the batch still out to node 1")
        #expect(!effects.needsRoute && s.waitingPartitions.count == 1)
        // The first request fails (the old leader is gone): both batches go to node 2, in order, one at a time.
        _ = s.complete(first[0], outcomes: [.retriable(SpoolStatusError(.notLeaderOrFollower, "moved"))], now: .now(),
                       backoff: { _ in .zero }, effects: &effects)
        let resent = s.planRequests(maxInFlight: 8, payloadBytesMax: 1 << 20, now: .now(), route: { _, _ in 2 }, effects: &effects)
        #expect(resent.map(\.node) == [2])
        #expect(resent.first?.entries.first?.batches.map(\.baseSequence) == [0], "the retried batch first, alone")
    }

    @Test func aRouterBootstrapsFromTheFirstBrokerThatAnswersAndASingleBrokerLeadsEverything() async throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let dead = ConnectionConfig(host: "127.0.0.1", port: freeLoopbackPort())
        var live = ConnectionConfig(host: "127.0.0.1", port: broker.port)
        live.requestTimeoutMillis = 10_000
        let router = try await BrokerRouter.connect([dead, live])
        #expect(router.bootstrap.config.port == broker.port)
        let admin = SpoolAdmin(router: router)
        try await admin.createTopic("single", partitions: 2)
        let m = try await router.refresh(topics: ["single"])
        #expect(!m.clustered && m.answeredBy == 0 && m.partitionCounts["single"] == 2)
        #expect(m.leader(of: TopicPartition("single", 1)) == 0 && m.brokers[0] == "127.0.0.1:\(broker.port)")
        #expect(router.leader(of: TopicPartition("single", 1))?.connection === router.bootstrap)
        // A producer and a consumer over the router: the records come back at their offsets.
        let producer = SpoolProducer(router: router)
        let at = try await producer.send(topic: "single", partition: 1, value: Array("x".utf8))
        try await producer.close()
        #expect(at.offset == 0)
        #expect(try await admin.listOffset(topic: "single", partition: 1, .latest) == 1)
        let consumer = SpoolConsumer(router: router, config: ConsumerConfig())
        try await consumer.assign(topic: "single", partitions: [1], from: .beginning)
        var got: [ConsumerRecord] = []
        for _ in 0..<20 where got.isEmpty { got += try await consumer.poll().map { $0 } }
        #expect(got.map(\.offset) == [0])
        await router.close()
    }
}

extension ProducerState {
    /// Test helper: closes one batch of one empty record into partition `p`'s queue.
    mutating func addClosedBatch(_ topic: ProducerTopic, _ p: Int32) {
        var builder = RecordBatchBuilder(codec: .none, initialCapacity: 256)
        builder.append(key: [UInt8](), value: [UInt8](), timestamp: 0)
        let batch = ProducerBatch(topic: topic, partition: p, builder: builder, openedAt: .now, deadline: .now() + .seconds(60))
        topics[topic.index].partitions[Int(p)].open = batch
        openBatches += 1
        _ = close(PartitionRef(topic: topic.index, partition: p), at: .now)
    }
}

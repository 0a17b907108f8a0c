import SpoolCoordination
import SpoolEtcd
import SpoolTestSupport
import Testing

/// Topic records and their partition states in a real etcd.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct TopicStoreTests {
    let keys = try! ClusterKeys(clusterId: "topics-test")

    @Test func createIsIfAbsentGrowIsCompareAndSwapDeleteRemovesEverything() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let store = TopicStore(client: client, keys: keys)
            let record = TopicRecord(assignment: [[1, 2, 3], [2, 3, 1]], overrides: ["min.insync.replicas": "2"])
            guard case .written = try await store.create("orders", record) else { Issue.record("not created"); return }
            #expect(try await store.create("orders", TopicRecord(assignment: [[1]], overrides: [:])) == .conflict)
            let all = try await store.readAll()
            #expect(all.topics["orders"]?.record == record)
            #expect(all.states.count == 2)
            #expect(all.states[TopicPartitionKey(topic: "orders", partition: 1)]?.state == PartitionState(leader: 2, leaderEpoch: 0, isr: [2, 3, 1], partitionEpoch: 0))

            let old = try #require(try await store.read("orders"))
            var grown = record
            grown.assignment.append([3, 1, 2])
            guard case .written = try await store.update("orders", from: old, to: grown) else { Issue.record("not grown"); return }
            // A second writer with the stale revision loses.
            #expect(try await store.update("orders", from: old, to: grown) == .conflict)
            let states = try await PartitionStateStore(client: client, keys: keys).readAll(topic: "orders")
            #expect(states[2]?.state.leader == 3 && states.count == 3)

            guard case .written = try await store.delete("orders") else { Issue.record("not deleted"); return }
            #expect(try await store.delete("orders") == .conflict)
            let after = try await store.readAll()
            #expect(after.topics.isEmpty && after.states.isEmpty)
        }
    }
}

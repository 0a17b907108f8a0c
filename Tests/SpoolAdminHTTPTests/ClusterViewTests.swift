import Foundation
import SpoolAdminHTTP
import SpoolBroker
import Testing

/// `GET /v1/cluster` as the console's cluster page reads it.
@Suite struct ClusterViewTests {
    @Test func singleBrokerIsNotClustered() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 2, configs: [:])
        let view = t.api.cluster()
        #expect(!view.clustered && view.controllerId == -1)
        #expect(view.brokers.isEmpty && view.partitions.isEmpty)
        #expect(view.underReplicatedPartitions == 0 && view.offlinePartitions == 0)
    }

    /// Brokers 1 and 2 live (2 the controller), 3 gone: t-0 lost 3 from its ISR, t-1 lost its
    /// leader (3) and has none, t-2 is whole.
    @Test func clusterMarksMissingReplicasAndLeaders() async throws {
        let t = try TestBroker { $0.nodeId = 1 }
        defer { Task { await t.close() } }
        let partitions = [
            ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 4, isr: [1, 2], partitionEpoch: 7),
            ReplicaState(replicas: [3, 1], leader: 3, leaderEpoch: 2, isr: [3], partitionEpoch: 3),
            ReplicaState(replicas: [2, 1], leader: 2, leaderEpoch: 0, isr: [2, 1], partitionEpoch: 0),
        ]
        t.broker.clusterAdministration = FixedClusterAdministration(view: ClusterMetadataView(
            brokers: [.init(nodeId: 1, host: "127.0.0.1", port: 9091, nativeAddress: "127.0.0.1:9291"),
                      .init(nodeId: 2, host: "127.0.0.1", port: 9092, nativeAddress: "127.0.0.1:9292")],
            controllerId: 2,
            topics: ["t": ClusterTopicDescription(name: "t", overrides: [:], partitions: partitions)]))

        let view = t.api.cluster()
        #expect(view.clustered && view.nodeId == 1 && view.controllerId == 2)
        #expect(view.brokers.map(\.nodeId) == [1, 2])
        #expect(view.brokers.map(\.kafkaAddress) == ["127.0.0.1:9091", "127.0.0.1:9092"])
        #expect(view.brokers.map(\.nativeAddress) == ["127.0.0.1:9291", "127.0.0.1:9292"])
        #expect(view.partitions.map(\.partition) == [0, 1, 2])
        #expect(view.partitions.map(\.outOfSyncReplicas) == [[3], [1], []])
        #expect(view.partitions.map(\.offlineReplicas) == [[3], [3], []])
        #expect(view.partitions.map(\.underReplicated) == [true, true, false])
        #expect(view.partitions.map(\.offline) == [false, true, false])
        #expect(view.partitions.map(\.leaderEpoch) == [4, 2, 0])
        #expect(view.underReplicatedPartitions == 2 && view.offlinePartitions == 1)

        // The names the console's cluster page (Console/app.js) reads.
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(view)) as? [String: Any])
        for key in ["clustered", "nodeId", "controllerId", "brokers", "partitions", "underReplicatedPartitions", "offlinePartitions"] {
            #expect(json[key] != nil, "no \(key)")
        }
        let broker = try #require((json["brokers"] as? [[String: Any]])?.first)
        #expect(Set(broker.keys) == ["nodeId", "kafkaAddress", "nativeAddress"])
        let partition = try #require((json["partitions"] as? [[String: Any]])?.first)
        #expect(Set(partition.keys) == ["topic", "partition", "replicas", "leader", "leaderEpoch", "isr", "outOfSyncReplicas",
                                         "offlineReplicas", "underReplicated", "offline"])
    }
}

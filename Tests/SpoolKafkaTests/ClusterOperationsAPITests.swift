import NIOCore
import SpoolBroker
import SpoolKafka
import Testing

/// ElectLeaders (43), AlterPartitionReassignments (45), ListPartitionReassignments (46): the wire
/// layout against bytes written by hand from Kafka's message definitions, and a single-node
/// broker's answers (it leads every partition on itself). Cluster-mode behaviour is in
/// `SpoolCLITests.ClusterOperationsTests` (three broker processes and etcd).
@Suite(.serialized) struct ClusterOperationsAPITests {
    func encode<M: KafkaMessage>(_ m: M, version: Int16) -> [UInt8] {
        var writer = KafkaWriter()
        m.write(to: &writer, version: version)
        return Array(writer.buffer.readableBytesView)
    }

    @Test func wireLayoutMatchesKafkasDefinitions() throws {
        // ElectLeaders v1: ElectionType int8, TopicPartitions (int32 count; int16 string; int32 count, int32s), TimeoutMs.
        let elect = ElectLeadersRequest(electionType: 1, topicPartitions: [.init(topic: "t", partitions: [0])], timeoutMs: 60_000)
        #expect(encode(elect, version: 1) == [0x01, 0, 0, 0, 1, 0, 1, 0x74, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xEA, 0x60])
        // v0 has no ElectionType; a null list (every partition) is count -1.
        #expect(encode(ElectLeadersRequest(topicPartitions: nil, timeoutMs: 1), version: 0) == [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1])
        // v2 is flexible: compact arrays and strings, tag sections.
        #expect(encode(elect, version: 2) == [0x01, 0x02, 0x02, 0x74, 0x02, 0, 0, 0, 0, 0x00, 0, 0, 0xEA, 0x60, 0x00])
        // AlterPartitionReassignments v0 (flexible): TimeoutMs; Topics [Name; Partitions [Index; Replicas (nullable)]].
        let alter = AlterPartitionReassignmentsRequest(timeoutMs: 60_000, topics: [.init(name: "t", partitions: [
            .init(partitionIndex: 0, replicas: [2, 3]), .init(partitionIndex: 1, replicas: nil)])])
        #expect(encode(alter, version: 0) == [0, 0, 0xEA, 0x60, 0x02, 0x02, 0x74, 0x03,
                                              0, 0, 0, 0, 0x03, 0, 0, 0, 2, 0, 0, 0, 3, 0x00,
                                              0, 0, 0, 1, 0x00, 0x00,
                                              0x00, 0x00])
        // ListPartitionReassignments v0 response: one ongoing move.
        let list = ListPartitionReassignmentsResponse(topics: [.init(name: "t", partitions: [
            .init(partitionIndex: 0, replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1])])])
        #expect(encode(list, version: 0) == [0, 0, 0, 0, 0, 0, 0x00, 0x02, 0x02, 0x74, 0x02,
                                             0, 0, 0, 0, 0x04, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0x02, 0, 0, 0, 3, 0x02, 0, 0, 0, 1, 0x00,
                                             0x00, 0x00])
    }

    @Test func singleNodeAnswers() async throws {
        let h = try await KafkaHarness()
        _ = try await h.broker.createTopic("solo", partitions: 1)
        // ElectLeaders: the only replica leads already; an unknown partition is unknown.
        try await h.send(.electLeaders, version: 1, correlationId: 1, ElectLeadersRequest(
            electionType: 0, topicPartitions: [.init(topic: "solo", partitions: [0, 5])]))
        var (_, body) = try await h.receive(flexibleHeader: false)
        var reader = KafkaReader(body)
        let elected = try ElectLeadersResponse(from: &reader, version: 1)
        #expect(elected.errorCode == 0)
        #expect(elected.replicaElectionResults.first?.partitionResult.map(\.errorCode) == [84, 3])
        // Unknown election type (v1+): INVALID_REQUEST.
        try await h.send(.electLeaders, version: 2, correlationId: 2, ElectLeadersRequest(electionType: 7, topicPartitions: nil))
        (_, body) = try await h.receive(flexibleHeader: true)
        reader = KafkaReader(body)
        #expect(try ElectLeadersResponse(from: &reader, version: 2).errorCode == 42)
        // AlterPartitionReassignments: [this broker] is a no-op, anything else invalid, a cancel has nothing to cancel.
        try await h.send(.alterPartitionReassignments, version: 0, correlationId: 3, AlterPartitionReassignmentsRequest(topics: [
            .init(name: "solo", partitions: [.init(partitionIndex: 0, replicas: [0]), .init(partitionIndex: 0, replicas: [0, 1]),
                                             .init(partitionIndex: 0, replicas: nil)])]))
        (_, body) = try await h.receive(flexibleHeader: true)
        reader = KafkaReader(body)
        let altered = try AlterPartitionReassignmentsResponse(from: &reader, version: 0)
        #expect(altered.errorCode == 0 && altered.responses.first?.partitions.map(\.errorCode) == [0, 39, 85])
        // ListPartitionReassignments: none.
        try await h.send(.listPartitionReassignments, version: 0, correlationId: 4, ListPartitionReassignmentsRequest())
        (_, body) = try await h.receive(flexibleHeader: true)
        reader = KafkaReader(body)
        let listed = try ListPartitionReassignmentsResponse(from: &reader, version: 0)
        #expect(listed.errorCode == 0 && listed.topics.isEmpty)
        // ApiVersions advertises them.
        for (api, range) in [(KafkaApiKey.electLeaders, Int16(0)...2), (.alterPartitionReassignments, 0...0), (.listPartitionReassignments, 0...0)] {
            #expect(api.supportedVersions == range)
        }
        try await h.stop()
    }
}

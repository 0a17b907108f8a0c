import NIOCore
import SpoolBroker
import Testing
@testable import SpoolKafka

/// Manual replica assignments on a single broker: CreateTopics and CreatePartitions take one
/// that places every partition on this broker alone (node 0), and refuse any other with
/// INVALID_REPLICA_ASSIGNMENT and a sentence.
@Suite(.serialized) struct TopicAssignmentAPITests {
    @Test func aSingleBrokerTakesAssignmentsOfItselfAlone() async throws {
        let h = try await KafkaHarness()
        func create(_ name: String, _ lists: [[Int32]], numPartitions: Int32 = -1, correlationId: Int32) async throws -> CreateTopicsResponse.Topic {
            let topic = CreateTopicsRequest.Topic(name: name, numPartitions: numPartitions, replicationFactor: -1,
                                                  assignments: lists.enumerated().map { .init(partitionIndex: Int32($0.offset), brokerIds: $0.element) })
            try await h.send(.createTopics, version: 4, correlationId: correlationId, CreateTopicsRequest(topics: [topic], timeoutMs: 5_000))
            var (_, body) = try await h.receive(flexibleHeader: false)
            return try CreateTopicsResponse(from: &body, version: 4).topics[0]
        }
        func grow(_ name: String, to count: Int32, _ lists: [[Int32]], correlationId: Int32) async throws -> CreatePartitionsResponse.Result {
            let request = CreatePartitionsRequest(topics: [.init(name: name, count: count, assignments: lists.map { .init(brokerIds: $0) })], timeoutMs: 5_000)
            try await h.send(.createPartitions, version: 1, correlationId: correlationId, request)
            var (_, body) = try await h.receive(flexibleHeader: false)
            return try CreatePartitionsResponse(from: &body, version: 1).results[0]
        }
        let placed = try await create("mine", [[0], [0]], correlationId: 1)
        #expect(placed.errorCode == 0, "\(placed)")
        #expect(try h.broker.describeTopic("mine").partitions.count == 2)
        let elsewhere = try await create("theirs", [[0, 1]], correlationId: 2)
        #expect(elsewhere.errorCode == KafkaErrorCode.invalidReplicaAssignment.rawValue
                && elsewhere.errorMessage?.contains("on broker 0 alone") == true, "\(elsewhere)")
        let counted = try await create("counted", [[0]], numPartitions: 1, correlationId: 3)
        #expect(counted.errorCode == KafkaErrorCode.invalidRequest.rawValue, "\(counted)")
        let grown = try await grow("mine", to: 3, [[0]], correlationId: 4)
        #expect(grown.errorCode == 0, "\(grown)")
        #expect(try h.broker.describeTopic("mine").partitions.count == 3)
        let refused = try await grow("mine", to: 4, [[2]], correlationId: 5)
        #expect(refused.errorCode == KafkaErrorCode.invalidReplicaAssignment.rawValue && refused.errorMessage?.contains("alone") == true, "\(refused)")
        #expect(try h.broker.describeTopic("mine").partitions.count == 3)
        try await h.stop()
    }
}

import NIOCore
import SpoolBroker
import SpoolRecords
import Testing
@testable import SpoolKafka

/// AlterClientQuotas / DescribeClientQuotas over the wire, and a produce and a fetch over
/// their client id's rate held by their throttle time and reporting it.
@Suite(.serialized) struct ClientQuotaAPITests {
    @Test func quotasAreSetDescribedAndEnforcedOnProduceAndFetch() async throws {
        let h = try await KafkaHarness(broker: { $0.quotas.samples = 2 })
        _ = try await h.broker.createTopic("q", partitions: 1)
        // The harness' client id is "test".
        let set = AlterClientQuotasRequest(entries: [
            .init(entity: [.init(entityType: "client-id", entityName: "test")], ops: [
                .init(key: "producer_byte_rate", value: 2000, remove: false), .init(key: "consumer_byte_rate", value: 2000, remove: false)]),
            .init(entity: [.init(entityType: "user", entityName: nil)], ops: [.init(key: "request_percentage", value: 5, remove: false)]),
            .init(entity: [.init(entityType: "group", entityName: "g")], ops: [.init(key: "producer_byte_rate", value: 5, remove: false)]),
        ])
        try await h.send(.alterClientQuotas, version: 0, correlationId: 1, set)
        var (_, body) = try await h.receive(flexibleHeader: false)
        let altered = try AlterClientQuotasResponse(from: &body, version: 0)
        #expect(altered.entries.map(\.errorCode) == [0, KafkaErrorCode.invalidRequest.rawValue, KafkaErrorCode.invalidRequest.rawValue])
        #expect(altered.entries[1].errorMessage?.contains("request_percentage") == true)

        try await h.send(.describeClientQuotas, version: 0, correlationId: 2, DescribeClientQuotasRequest(
            components: [.init(entityType: "client-id", matchType: 0, match: "test")], strict: true))
        (_, body) = try await h.receive(flexibleHeader: false)
        let described = try DescribeClientQuotasResponse(from: &body, version: 0)
        #expect(described.errorCode == 0)
        #expect(described.entries?.count == 1)
        #expect(Set(described.entries?.first?.values.map { "\($0.key)=\(Int($0.value))" } ?? []) == ["producer_byte_rate=2000", "consumer_byte_rate=2000"])

        // 2 × 4 KiB of records against 2,000 B/s over a 1 s window: the second answer is held
        // and says for how long.
        var builder = RecordBatchBuilder(codec: .none)
        for i in 0..<4 { builder.append(key: nil, value: [UInt8](repeating: UInt8(i), count: 1000), timestamp: 1_700_000_000_000) }
        let batch = try builder.build()
        var throttles: [Int32] = []
        for id in Int32(10)..<12 {
            let started = NIODeadline.now()
            let produce = ProduceRequest(acks: 1, timeoutMs: 5000, topicData: [.init(name: "q", partitionData: [.init(index: 0, records: .buffer(batch))])])
            try await h.send(.produce, version: 9, correlationId: id, produce)
            (_, body) = try await h.receive(flexibleHeader: true)
            let answer = try ProduceResponse(from: &body, version: 9)
            #expect(answer.responses.first?.partitionResponses.first?.errorCode == 0, "a throttled produce is still appended")
            throttles.append(answer.throttleTimeMs)
            if answer.throttleTimeMs > 0 {
                #expect(NIODeadline.now() - started >= .milliseconds(Int64(answer.throttleTimeMs)), "the answer was held for its throttle time")
            }
        }
        #expect(throttles[0] > 0 || throttles[1] > 0, "8 KB at 2,000 B/s is over the quota: \(throttles)")
        #expect(throttles.allSatisfy { $0 <= 2000 }, "capped at the sampled window: \(throttles)")

        let fetch = FetchRequest(maxWaitMs: 0, minBytes: 0, topics: [.init(topic: "q", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        try await h.send(.fetch, version: 12, correlationId: 20, fetch)
        (_, body) = try await h.receive(flexibleHeader: true)
        let fetched = try FetchResponse(from: &body, version: 12)
        #expect(fetched.throttleTimeMs > 0, "8 KB fetched at once is over the 2,000 B/s fetch quota")

        // Removed: no more throttling for the produce rate.
        let remove = AlterClientQuotasRequest(entries: [.init(entity: [.init(entityType: "client-id", entityName: "test")], ops: [
            .init(key: "producer_byte_rate", value: 0, remove: true)])])
        try await h.send(.alterClientQuotas, version: 0, correlationId: 30, remove)
        (_, body) = try await h.receive(flexibleHeader: false)
        #expect(try AlterClientQuotasResponse(from: &body, version: 0).entries.first?.errorCode == 0)
        #expect(h.broker.listQuotas().map(\.values) == [QuotaValues(consumerByteRate: 2000)])
        try await h.stop()
    }
}

import NIOCore
import SpoolAdminHTTP
import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

/// The JSON API's answers, built from a real broker.
@Suite struct AdminAPITests {
    @Test func topicsShowOffsetsSizesAndConfigs() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 2, configs: ["retention.ms": "3600000"])
        try await t.produce("orders", partition: 1, values: (0..<5).map { Array("v\($0)".utf8) })
        let topic = try t.api.topic("orders")
        #expect(topic.partitions.map(\.endOffset) == [0, 5])
        #expect(topic.partitions.map(\.startOffset) == [0, 0])
        #expect(topic.partitions[1].sizeBytes > 0 && topic.partitions[0].sizeBytes == 0)
        #expect(topic.records == 5 && topic.recordsIn == 5)
        #expect(topic.configs["retention.ms"] == "3600000" && topic.overrides == ["retention.ms": "3600000"])
        #expect(topic.partitions.allSatisfy { !$0.stopped })
        #expect(t.api.topics().map(\.name) == ["orders"])
        #expect(throws: AdminAPIError.self) { try t.api.topic("missing") }
        let info = t.api.brokerInfo()
        #expect(info.topics == 1 && info.partitions == 2 && info.recordsIn == 5 && info.ready)
        #expect(info.dataDirectory.hasPrefix("/") && (info.diskFreeBytes ?? 0) > 0)
    }

    @Test func groupsShowCommittedOffsetsAndLag() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 2)
        try await t.produce("orders", partition: 0, values: (0..<8).map { Array("v\($0)".utf8) })
        try await t.produce("orders", partition: 1, values: (0..<3).map { Array("v\($0)".utf8) })
        try await t.broker.commitOffsets(group: "billing", [
            TopicPartition("orders", 0): (offset: 2, metadata: ""), TopicPartition("orders", 1): (offset: 3, metadata: "m"),
        ])
        let group = try t.api.group(named: "billing")
        #expect(group.offsets.map(\.lag) == [6, 0])
        #expect(group.offsets.map(\.endOffset) == [8, 3])
        #expect(group.totalLag == 6)
        #expect(group.members.isEmpty && group.state == "Empty")
        #expect(t.api.groups().map(\.group) == ["billing"])
        #expect(throws: AdminAPIError.self) { try t.api.group(named: "nobody") }
    }

    @Test func recordsAreDecodedWithinLimits() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("mixed", partitions: 1)
        try await t.produce("mixed", values: (0..<30).map { Array("text \($0)".utf8) })
        try await t.produce("mixed", values: [[0x00, 0xFF, 0x10], Array(repeating: UInt8(ascii: "a"), count: 10_000)],
                            headers: [RecordHeader(key: "trace", value: "abc")])

        // The latest 5: offsets 27...31, across the two batches.
        let latest = try t.api.records(topic: "mixed", partition: 0, from: nil, limit: 5, maxBytes: 1 << 20)
        #expect(latest.records.map(\.offset) == [27, 28, 29, 30, 31])
        #expect(latest.records[0].value?.data == "text 27" && latest.records[0].value?.encoding == "text")
        let binary = latest.records[3].value!
        #expect(binary.encoding == "hex" && binary.data == "00ff10" && binary.length == 3)
        let long = latest.records[4].value!
        #expect(long.truncated && long.length == 10_000 && long.data.count == 4096)
        #expect(latest.records[4].headers.first?.key == "trace" && latest.records[4].headers.first?.value?.data == "abc")
        #expect(latest.records[4].key?.data == "key-1")
        #expect(latest.next == 32 && !latest.limited)

        // From an offset inside the first batch: earlier records of the batch are skipped.
        let from = try t.api.records(topic: "mixed", partition: 0, from: 10, limit: 3, maxBytes: 1 << 20)
        #expect(from.records.map(\.offset) == [10, 11, 12] && from.limited && from.next == 13)

        // Limits are enforced, not trusted.
        #expect(throws: AdminAPIError.self) { try t.api.records(topic: "mixed", partition: 0, from: nil, limit: 501, maxBytes: 1024) }
        #expect(throws: AdminAPIError.self) { try t.api.records(topic: "mixed", partition: 0, from: nil, limit: 5, maxBytes: 0) }
        #expect(throws: AdminAPIError.self) { try t.api.records(topic: "mixed", partition: 7, from: nil, limit: 5, maxBytes: 1024) }
        // A byte budget smaller than the first batch still returns that batch's records, then stops.
        let tight = try t.api.records(topic: "mixed", partition: 0, from: 0, limit: 500, maxBytes: 16)
        #expect(tight.records.map(\.offset) == Array(0..<30) && tight.limited)
    }
}

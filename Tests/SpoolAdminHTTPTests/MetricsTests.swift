import SpoolRecords
import SpoolAdminHTTP
import SpoolBroker
import SpoolStorage
import Testing

/// The Prometheus metrics move when records flow, and carry what `promtool` asks for.
@Suite struct MetricsTests {
    @Test func countersMoveWhenRecordsFlow() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 2)
        let before = t.scrape()
        #expect(TestBroker.value(before, #"spool_records_in_total{topic="orders"}"#) == nil)

        try await t.produce("orders", partition: 0, values: (0..<40).map { Array("order \($0)".utf8) })
        try await t.produce("orders", partition: 1, values: (0..<2).map { Array("order \($0)".utf8) })
        let after = t.scrape()
        #expect(TestBroker.value(after, #"spool_records_in_total{topic="orders"}"#) == 42)
        #expect((TestBroker.value(after, #"spool_bytes_in_total{topic="orders"}"#) ?? 0) > 42 * 7)
        #expect(TestBroker.value(after, #"spool_log_end_offset{topic="orders",partition="0"}"#) == 40)
        #expect(TestBroker.value(after, #"spool_log_end_offset{topic="orders",partition="1"}"#) == 2)
        #expect((TestBroker.value(after, #"spool_log_size_bytes{topic="orders",partition="0"}"#) ?? 0) > 0)
        #expect(TestBroker.value(after, "spool_partitions") == 2)

        // A group that committed 10 of partition 0 lags by 30 there.
        try await t.broker.commitOffsets(group: "billing", [TopicPartition("orders", 0): (offset: 10, metadata: "")])
        let lagged = t.scrape()
        #expect(TestBroker.value(lagged, #"spool_consumer_group_lag{group="billing",topic="orders",partition="0"}"#) == 30)

        // Deleting the topic removes its per-partition series.
        try await t.broker.deleteTopic("orders")
        let gone = t.scrape()
        #expect(!gone.contains(#"spool_log_end_offset{topic="orders""#))
        #expect(!gone.contains(#"spool_records_in_total{topic="orders"}"#))
    }

    @Test func everyFamilyHasHelpAndCountersEndInTotal() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("t", partitions: 1)
        try await t.produce("t", values: [Array("x".utf8)])
        t.broker.events.metrics.requests(listener: "native", api: "produce").completed(durationNanos: 120_000, errorCode: "INVALID_ARGUMENT")
        let text = t.scrape()
        var families: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            families[String(parts[2])] = String(parts[3])
        }
        #expect(families.count >= 20)
        for (name, type) in families {
            #expect(name.hasPrefix("spool_"), "\(name)")
            #expect(text.contains("# HELP \(name) "), "no help for \(name)")
            #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
            #expect(BrokerMetrics.descriptors[name] != nil, "\(name) is not in the catalogue")
        }
        #expect(families["spool_request_duration_seconds"] == "histogram")
        #expect(TestBroker.value(text, #"spool_request_errors_total{listener="native",api="produce",code="INVALID_ARGUMENT"}"#) == 1)
        // 120 µs falls in the 250 µs bucket, not the 100 µs one.
        #expect(TestBroker.value(text, #"spool_request_duration_seconds_bucket{listener="native",api="produce",le="0.0001"}"#) == 0)
        #expect(TestBroker.value(text, #"spool_request_duration_seconds_bucket{listener="native",api="produce",le="0.00025"}"#) == 1)
    }

    @Test func fsyncAndGroupCommitAreObserved() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("durable", partitions: 1)
        var builder = SpoolRecords.RecordBatchBuilder()
        builder.append(key: nil, value: Array("v".utf8), timestamp: 1)
        let result = try await t.broker.produce(TopicPartition("durable", 0), try builder.build(), acks: .all, on: t.loop).get()
        #expect(result.error == nil)
        let text = t.scrape()
        #expect((TestBroker.value(text, "spool_fsync_duration_seconds_count") ?? 0) >= 1)
        #expect((TestBroker.value(text, "spool_group_commit_appends_count") ?? 0) >= 1)
    }
}

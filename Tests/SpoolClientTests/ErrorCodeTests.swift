import Foundation
import NIOCore
import SpoolClient
import SpoolProtocol
import SpoolRecords
import SpoolTestSupport
import Testing

/// Errors that mean different things have different codes: the client's own in-flight
/// limit is not a deadline, and a batch that can never fit (TOO_LARGE) is not a shortage
/// that passes (RESOURCE_EXHAUSTED), so the consumer fails that partition instead of
/// retrying it forever.
@Suite struct ErrorCodeTests {
    /// A broker whose `broker.properties` holds `properties`, over `dir`.
    static func broker(_ dir: String, _ properties: String) throws -> BrokerProcess {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try properties.write(toFile: dir + "/broker.properties", atomically: true, encoding: .utf8)
        return try BrokerProcess(arguments: ["broker", "--data-dir", dir + "/data", "--listen", "127.0.0.1:0", "--config", dir + "/broker.properties"])
    }

    static func longPoll(_ topic: String) -> Spool_V1_FetchRequest {
        var request = Spool_V1_FetchRequest()
        request.maxWaitMs = 20_000
        request.minBytes = 1
        var p = Spool_V1_FetchPartition()
        p.topic = topic
        p.offset = 0
        request.partitions = [p]
        return request
    }

    @Test func theBrokersInFlightLimitIsItsOwnRetriableErrorNotADeadline() async throws {
        let dir = NSTemporaryDirectory() + "spool-client-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try Self.broker(dir, "max.in.flight.per.connection=2\n")
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        defer { Task { await connection.close() } }
        try await SpoolAdmin(connection).createTopic("quiet", partitions: 1)
        // Two long polls fill the connection's limit (the broker said 2 in its handshake).
        let held = try (0..<2).map { _ in try connection.startCall(.fetch, Self.longPoll("quiet"), timeoutMillis: 30_000) }
        #expect(held.count == 2)
        #expect {
            _ = try connection.startCall(.fetch, Self.longPoll("quiet"))
        } throws: { error in
            guard let e = error as? SpoolClientError else { return false }
            return e.code == .tooManyCallsInFlight && e.isRetriable && isRetriable(e)
        }
    }

    @Test func aFetchedBatchLargerThanTheFrameFailsThePartitionWithASentenceInsteadOfRetryingForever() async throws {
        let dir = NSTemporaryDirectory() + "spool-client-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Written with the default frame limit (16 MiB): one 200 KiB batch.
        do {
            let first = try Self.broker(dir, "")
            let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: first.port)
            try await SpoolAdmin(connection).createTopic("wide", partitions: 1)
            var builder = RecordBatchBuilder(codec: .none)
            for i in 0..<200 { builder.append(key: nil, value: [UInt8](repeating: UInt8(i & 0xFF), count: 1_000), timestamp: 1_700_000_000_000) }
            var request = Spool_V1_ProduceRequest()
            request.topic = "wide"
            var p = Spool_V1_ProducePartition()
            p.partition = 0
            let payload = try builder.build()
            p.bytes = UInt32(payload.readableBytes)
            request.partitions = [p]
            let response: Spool_V1_ProduceResponse = try await connection.call(.produce, request, payload: payload)
            #expect(response.results.first?.code == .ok)
            await connection.close()
            #expect(first.terminate() == 0)
        }
        // Read with frames of 64 KiB: the batch can never be sent.
        let second = try Self.broker(dir, "max.frame.bytes=65536\n")
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: second.port)
        defer { Task { await connection.close() } }
        var fetch = Spool_V1_FetchRequest()
        var fp = Spool_V1_FetchPartition()
        fp.topic = "wide"
        fp.offset = 0
        fetch.partitions = [fp]
        let reply: Spool_V1_FetchResponse = try await connection.call(.fetch, fetch)
        #expect(reply.partitions.first?.code == .tooLarge, "\(reply)")
        #expect(reply.partitions.first?.message.contains("more than a response can carry") == true)

        // Subscribe says so too: the stream ends with TOO_LARGE instead of sending a frame over the limit.
        var subscribe = Spool_V1_SubscribeRequest()
        subscribe.topic = "wide"
        subscribe.offset = 0
        subscribe.initialCreditBytes = 1 << 20
        let (_, events) = try connection.openStream(.subscribe, subscribe)
        await #expect {
            for try await _ in events {}
        } throws: { ($0 as? SpoolStatusError)?.code == .tooLarge }

        let consumer = SpoolConsumer(connection: connection, config: ConsumerConfig())
        try await consumer.assign(topic: "wide", from: .beginning)
        let started = ContinuousClock.now
        await #expect {
            // Bounded: before, the consumer retried RESOURCE_EXHAUSTED forever.
            for _ in 0..<200 { _ = try await consumer.poll() }
        } throws: { error in
            guard let status = error as? SpoolStatusError else { return false }
            return status.code == .tooLarge && status.message.hasPrefix("wide-0: ") && !isRetriable(status)
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}

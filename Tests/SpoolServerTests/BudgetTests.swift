import Foundation
import NIOCore
import NIOPosix
import SpoolBroker
import SpoolClient
import SpoolProtocol
import SpoolRecords
import SpoolServer
import Testing

/// The resource budgets against real sockets: one client abusing a budget is slowed or
/// refused with a clear error, and another client still produces and consumes.
@Suite(.serialized) struct BudgetTests {
    /// Produces one uncompressed batch of about `bytes` to partition 0 of `topic`.
    static func produceBig(_ connection: SpoolConnection, topic: String, bytes: Int) async throws {
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(key: nil, value: [UInt8](repeating: 7, count: bytes), timestamp: PartitionLogClock.now)
        let batch = try builder.build()
        var request = Spool_V1_ProduceRequest()
        request.topic = topic
        var p = Spool_V1_ProducePartition()
        p.bytes = UInt32(batch.readableBytes)
        request.partitions = [p]
        let response: Spool_V1_ProduceResponse = try await connection.call(.produce, request, payload: batch)
        #expect(response.results.first?.code == .ok)
    }

    /// Another client can still produce and read back what it produced.
    static func anotherClientIsServed(_ broker: TestBroker, topic: String) async throws {
        let connection = try await broker.connect()
        let producer = SpoolProducer(connection: connection)
        let sent = try await producer.send(topic: topic, value: Array("still served".utf8))
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 100)
        try await consumer.seek(topic: topic, partition: sent.partition, to: .offset(sent.offset))
        let got = try await consumer.poll()
        #expect(got.first(where: { _ in true }).map { String(buffer: $0.value!) } == "still served")
        await connection.close()
    }

    /// A client that sends Fetch after Fetch and never reads: the broker holds at most
    /// `spanDescriptorsPerConnectionMax` duplicated descriptors for it and stops reading its
    /// requests (before: one descriptor per queued response, thousands a second).
    @Test func aFetchClientThatNeverReadsHoldsBoundedDescriptors() async throws {
        let perConnection = 8
        let broker = try await TestBroker { $0.budgets.spanDescriptorsPerConnectionMax = perConnection }
        let setup = try await broker.connect()
        try await SpoolAdmin(setup).createTopic("big", configs: ["compression.type": "none"])
        try await Self.produceBig(setup, topic: "big", bytes: 256 << 10)
        await setup.close()
        let baseline = descriptorsOpen(under: broker.directory)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let abuser = try await RawClient(port: broker.server.port, group: group, reading: false)
        var fetch = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = "big"
        fetch.partitions = [p]
        let requests = 3000
        var burst = ByteBuffer()
        for i in 0..<requests { burst.writeImmutableBuffer(try RawClient.frame(method: .fetch, stream: UInt32(i + 1), fetch)) }
        abuser.write(burst)

        // The broker pauses the connection (its socket is full) and defers answers.
        let budgets = broker.server.broker.budgets
        #expect(await waitFor { budgets.snapshot.readsPaused > 0 && budgets.snapshot.responsesDeferred > 0 }, "\(budgets.snapshot)")
        let held = descriptorsOpen(under: broker.directory) - baseline
        #expect(held <= perConnection, "the broker holds \(held) descriptors for one non-reading client")
        #expect(budgets.snapshot.sharedSpanDescriptorsInUse <= perConnection - 1)

        try await Self.anotherClientIsServed(broker, topic: "big")

        // Closing the abuser gives everything back.
        await abuser.close()
        #expect(await waitFor { budgets.snapshot.sharedSpanDescriptorsInUse == 0 && budgets.snapshot.connections == 0 }, "\(budgets.snapshot)")
        #expect(await waitFor { descriptorsOpen(under: broker.directory) <= baseline })
        try await group.shutdownGracefully()
        await broker.stop()
    }

    /// Over `max.connections` a connection is told why (GOAWAY RESOURCE_EXHAUSTED) and
    /// closed; once one closes, a new one is admitted.
    @Test func connectionsOverTheLimitAreRefusedWithGoAway() async throws {
        let broker = try await TestBroker { $0.budgets.maxConnections = 2 }
        let first = try await broker.connect()
        let second = try await broker.connect()
        _ = try await SpoolAdmin(first).listTopics()
        _ = try await SpoolAdmin(second).listTopics()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let third = try await RawClient(port: broker.server.port, group: group)
        let status = try await third.goAwayAndClose()
        #expect(status?.code == .resourceExhausted, "\(String(describing: status))")
        #expect(status?.message.contains("max.connections") == true)
        #expect(broker.server.broker.budgets.snapshot.connectionsRefused == 1)
        // The client library surfaces it as the status.
        await #expect {
            let refused = try await broker.connect()
            _ = try await SpoolAdmin(refused).listTopics()
        } throws: { ($0 as? SpoolStatusError)?.code == .resourceExhausted }
        await first.close()
        let budgets = broker.server.broker.budgets
        #expect(await waitFor { budgets.snapshot.connections == 1 })
        let fourth = try await broker.connect()
        _ = try await SpoolAdmin(fourth).listTopics()
        await second.close()
        await fourth.close()
        try await group.shutdownGracefully()
        await broker.stop()
    }

    /// Connections that start big frames and never finish them: the bytes buffered for them
    /// stay within the inbound budget (the frames that do not fit are refused), the slow
    /// senders are dropped after `frameCompletionSeconds`, and others are served meanwhile.
    @Test func unfinishedFramesStayWithinTheInboundBudget() async throws {
        let budgetBytes = 8 << 20
        let broker = try await TestBroker {
            $0.budgets.inboundBufferedBytesMax = budgetBytes
            $0.budgets.frameCompletionSeconds = 3
        }
        let setup = try await broker.connect()
        try await SpoolAdmin(setup).createTopic("t")
        await setup.close()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let frameBytes = 3 << 20
        var senders: [RawClient] = []
        for _ in 0..<4 {
            let client = try await RawClient(port: broker.server.port, group: group)
            var partial = ByteBuffer()
            partial.writeInteger(UInt32(frameBytes - 4))
            partial.writeBytes([1, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]) // REQUEST, Produce, stream 1, empty message
            partial.writeBytes([UInt8](repeating: 0, count: frameBytes - 16 - 1024)) // all but the last KiB
            client.write(partial)
            senders.append(client)
        }
        let budgets = broker.server.broker.budgets
        // Two frames fit in 8 MiB; the other two are refused at once (GOAWAY RESOURCE_EXHAUSTED).
        #expect(await waitFor { budgets.snapshot.framesRefused == 2 }, "\(budgets.snapshot)")
        #expect(budgets.snapshot.inboundBufferedBytes <= budgetBytes)
        try await Self.anotherClientIsServed(broker, topic: "t")
        // The two that fit never finish: dropped with DEADLINE_EXCEEDED, their bytes released.
        var statuses: [Spool_V1_StatusCode] = []
        for client in senders {
            let status = try await client.goAwayAndClose()
            statuses.append(status?.code ?? .unknown)
        }
        #expect(statuses.filter { $0 == .resourceExhausted }.count == 2 && statuses.filter { $0 == .deadlineExceeded }.count == 2, "\(statuses)")
        #expect(await waitFor { budgets.snapshot.inboundBufferedBytes == 0 })
        #expect(budgets.snapshot.slowSendersDropped == 2 && budgets.snapshot.framesRefused == 2)
        let refusal = senders.compactMap { c in c.frames.last.flatMap { try? ProtoCodec.decode(Spool_V1_Status.self, from: $0.message) } }
            .first { $0.code == .resourceExhausted }
        #expect(refusal?.message.contains("inbound buffer budget") == true)
        try await group.shutdownGracefully()
        await broker.stop()
    }
}

/// Milliseconds since the epoch, for record timestamps.
enum PartitionLogClock {
    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

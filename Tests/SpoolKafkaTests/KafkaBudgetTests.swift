import NIOCore
import NIOPosix
import SpoolBroker
import SpoolRecords
import Testing

@testable import SpoolKafka

/// The Kafka listener under the budgets the native one has (the shared `TransportHandler`),
/// against real sockets: a client trickling a huge request is cut off at the frame
/// completion deadline and its share of the inbound budget released; a fetcher that never
/// reads has its requests paused within the outbound budget. Another client is served
/// meanwhile in both.
@Suite(.serialized) struct KafkaBudgetTests {
    /// A raw connection to the Kafka listener: writes bytes, reads nothing unless told to.
    final class RawConnection: Sendable {
        let channel: Channel

        init(port: Int, group: EventLoopGroup, reading: Bool) async throws {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.autoRead, value: reading)
                // A small receive buffer: a client that does not read stops the broker's writes sooner.
                .channelOption(.socketOption(.so_rcvbuf), value: 16 << 10)
                .connect(host: "127.0.0.1", port: port).get()
        }

        func write(_ bytes: ByteBuffer) async throws {
            try await channel.writeAndFlush(bytes)
        }

        var isActive: Bool { channel.isActive }

        func close() async {
            try? await channel.close()
        }
    }

    /// One request: size, header (v1 or v2 by `flexible`), body.
    static func request<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, correlationId: Int32, _ body: M) -> ByteBuffer {
        var writer = KafkaWriter()
        writer.writeInt32(0)
        KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlationId, clientId: "budget-test").write(to: &writer)
        body.write(to: &writer, version: version)
        writer.buffer.setInteger(Int32(writer.buffer.readableBytes - 4), at: 0)
        return writer.buffer
    }

    static func waitFor(seconds: Int64 = 30, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    /// The other client is served: ApiVersions is answered on its connection.
    static func anotherClientIsServed(_ h: KafkaHarness, correlationId: Int32) async throws {
        try await h.send(.apiVersions, version: 3, correlationId: correlationId, ApiVersionsRequest(clientSoftwareName: "t", clientSoftwareVersion: "1"))
        var (id, body) = try await h.receive(flexibleHeader: false)
        #expect(id == correlationId)
        #expect(try ApiVersionsResponse(from: &body, version: 3).errorCode == 0)
    }

    /// A client announces a 100 MiB Produce (Kafka's `socket.request.max.bytes`) and sends
    /// it a few bytes at a time: it holds 100 MiB of the inbound budget (a second such
    /// request is refused) until the frame completion deadline cuts it off, well before
    /// the idle timeout; then the budget is whole again.
    @Test func aTrickledRequestIsCutOffAtTheFrameDeadline() async throws {
        let requestBytes = 100 << 20
        let h = try await KafkaHarness(broker: {
            $0.budgets.frameCompletionSeconds = 2
            $0.budgets.inboundBufferedBytesMax = requestBytes + (requestBytes / 2)
        })
        let budgets = h.broker.budgets
        let slow = try await RawConnection(port: h.listener.port, group: h.group, reading: true)
        var head = ByteBuffer()
        head.writeInteger(Int32(requestBytes - 4))
        head.writeInteger(KafkaApiKey.produce.rawValue)
        head.writeInteger(Int16(9))
        head.writeInteger(Int32(1))
        try await slow.write(head)
        #expect(await Self.waitFor { budgets.snapshot.inboundBufferedBytes == requestBytes }, "\(budgets.snapshot)")
        let started = ContinuousClock.now

        // A byte every 100 ms: never idle, never done.
        let trickle = Task {
            while !Task.isCancelled && slow.isActive {
                try? await slow.write(ByteBuffer(bytes: [0]))
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        // A second request of that size does not fit next to it: refused, connection closed.
        let refused = try await RawConnection(port: h.listener.port, group: h.group, reading: true)
        try await refused.write(head)
        #expect(await Self.waitFor { !refused.isActive && budgets.snapshot.framesRefused == 1 }, "\(budgets.snapshot)")
        try await Self.anotherClientIsServed(h, correlationId: 7)

        // The trickler is cut off at the deadline (the idle timeout is 600 s), its budget back.
        #expect(await Self.waitFor { !slow.isActive }, "a trickling sender holds \(budgets.snapshot.inboundBufferedBytes) bytes of the inbound budget")
        let elapsed = ContinuousClock.now - started
        trickle.cancel()
        // Measured from when the test wrote its first bytes, which the broker's clock saw a
        // little later or earlier: a margin, not the exact deadline.
        #expect(elapsed >= .milliseconds(1500), "not before the deadline: \(elapsed)")
        #expect(budgets.snapshot.slowSendersDropped == 1, "\(budgets.snapshot)")
        #expect(await Self.waitFor { budgets.snapshot.inboundBufferedBytes == 0 }, "\(budgets.snapshot)")
        try await Self.anotherClientIsServed(h, correlationId: 8)
        await slow.close()
        await refused.close()
        try await h.stop()
    }

    /// A client sends Fetch after Fetch for a partition holding a 256 KiB batch and never
    /// reads the answers: the broker stops reading its requests once its queued answers are
    /// over the outbound budget (or its socket is full), holds no more span descriptors than
    /// its budget allows, and another client still fetches the batch. Closing the
    /// connection gives everything back. (Before the shared transport, the Kafka listener
    /// went on reading and queueing answers for such a client without bound.)
    @Test func aFetcherThatNeverReadsIsPausedWithinTheOutboundBudget() async throws {
        let perConnection = 4
        // No in-flight bound in the way: every pause counted is the transport's (outbound).
        let h = try await KafkaHarness(kafka: { $0.maxInFlightPerConnection = 1 << 20 }, broker: {
            $0.budgets.spanDescriptorsPerConnectionMax = perConnection
            $0.budgets.outboundBytesPerConnectionMax = 256 << 10
        })
        let budgets = h.broker.budgets
        _ = try await h.broker.createTopic("big", partitions: 1, configs: ["compression.type": "none"])
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(key: nil, value: [UInt8](repeating: 7, count: 256 << 10), timestamp: Broker.wallClockMillis())
        let batch = try builder.build()
        let batchBytes = batch.readableBytes
        let produce = ProduceRequest(acks: 1, timeoutMs: 5000, topicData: [.init(name: "big", partitionData: [.init(index: 0, records: .buffer(batch))])])
        try await h.send(.produce, version: 9, correlationId: 1, produce)
        var (_, body) = try await h.receive(flexibleHeader: true)
        #expect(try ProduceResponse(from: &body, version: 9).responses.first?.partitionResponses.first?.errorCode == 0)

        let fetch = FetchRequest(maxWaitMs: 0, minBytes: 0, topics: [.init(topic: "big", partitions: [
            .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)
        ])])
        let abuser = try await RawConnection(port: h.listener.port, group: h.group, reading: false)
        let requests = 20_000
        var burst = ByteBuffer()
        for i in 0..<requests { burst.writeImmutableBuffer(Self.request(.fetch, version: 4, correlationId: Int32(i), fetch)) }
        let write = Task { try? await abuser.write(burst) }  // completes only if the broker reads it all

        #expect(await Self.waitFor { budgets.snapshot.readsPaused > 0 }, "the broker never paused reading a client that does not read: \(budgets.snapshot)")
        #expect(budgets.snapshot.sharedSpanDescriptorsInUse <= perConnection - 1, "\(budgets.snapshot)")

        // Another client fetches the batch meanwhile.
        try await h.send(.fetch, version: 4, correlationId: 2, fetch)
        (_, body) = try await h.receive(flexibleHeader: false)
        let fetched = try FetchResponse(from: &body, version: 4)
        guard case .buffer(let records)? = fetched.responses.first?.partitions.first?.records else {
            Issue.record("no records for the other client")
            return
        }
        #expect(records.readableBytes == batchBytes)

        await abuser.close()
        write.cancel()
        #expect(await Self.waitFor { budgets.snapshot.sharedSpanDescriptorsInUse == 0 && budgets.snapshot.connections == 1 }, "\(budgets.snapshot)")
        try await h.stop()
    }
}

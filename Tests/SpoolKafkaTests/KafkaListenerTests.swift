import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

@testable import SpoolKafka

/// Splits responses (int32 size, then the bytes) for the test client.
struct ResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self), buffer.readableBytes >= 4 + Int(size) else {
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// Collects responses into an async stream.
final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let stream: AsyncStream<ByteBuffer>
    let continuation: AsyncStream<ByteBuffer>.Continuation
    init() { (stream, continuation) = AsyncStream.makeStream() }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
}

/// A broker with only the Kafka listener, on an ephemeral port, and a raw client.
final class KafkaHarness {
    let directory: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let broker: Broker
    let listener: KafkaListener
    let client: Channel
    let collector = Collector()
    var responses: AsyncStream<ByteBuffer>.AsyncIterator

    init(
        idleTimeoutSeconds: Int64 = 600, kafka configureKafka: (inout KafkaListenerConfig) -> Void = { _ in },
        broker configure: (inout BrokerConfig) -> Void = { _ in }
    ) async throws {
        directory = "/tmp/spool-kafka-test-\(UInt64.random(in: 0...UInt64.max))"
        var config = BrokerConfig(dataDirectory: directory)
        config.defaultPartitions = 1
        configure(&config)
        broker = try Broker(config: config)
        var kafka = KafkaListenerConfig()
        kafka.port = 0
        kafka.idleTimeoutSeconds = idleTimeoutSeconds
        configureKafka(&kafka)
        listener = try await KafkaListener.start(broker: broker, config: kafka, group: group)
        let collector = self.collector
        client = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ResponseDecoder()))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: listener.port).get()
        responses = collector.stream.makeAsyncIterator()
    }

    func send<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, correlationId: Int32, _ body: M) async throws {
        var writer = KafkaWriter()
        writer.writeInt32(0)
        KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlationId, clientId: "test").write(to: &writer)
        body.write(to: &writer, version: version)
        writer.buffer.setInteger(Int32(writer.buffer.readableBytes - 4), at: 0)
        try await client.writeAndFlush(writer.buffer)
    }

    /// The next response: its correlation id and its body (after a v1 header's tags when `flexible`).
    func receive(flexibleHeader: Bool) async throws -> (correlationId: Int32, body: ByteBuffer) {
        guard var frame = await responses.next() else { throw KafkaDecodingError(.truncated, "connection closed") }
        let correlationId = frame.readInteger(as: Int32.self)!
        if flexibleHeader {
            var reader = KafkaReader(frame)
            try KafkaRequestHeader.skipTagSection(from: &reader)
            frame = reader.buffer
        }
        return (correlationId, frame)
    }

    func stop() async throws {
        try? await client.close()  // the broker may have closed it
        await listener.stopAccepting()
        try await group.shutdownGracefully()
        try await broker.close()
        try? Directory.removeTree(directory, io: PosixFileIO())
    }
}

@Suite(.serialized) struct KafkaListenerTests {
    @Test func answersPipelinedRequestsInOrder() async throws {
        let h = try await KafkaHarness()
        // Metadata auto-creates the topic.
        try await h.send(.metadata, version: 9, correlationId: 1, MetadataRequest(topics: [.init(name: "ordered")]))
        var (id, body) = try await h.receive(flexibleHeader: true)
        let metadata = try MetadataResponse(from: &body, version: 9)
        #expect(id == 1 && metadata.topics.first?.errorCode == 0 && metadata.topics.first?.partitions.count == 1)

        // A long poll on an empty partition, then two quick requests behind it on the same connection.
        let started = NIODeadline.now()
        let fetch = FetchRequest(maxWaitMs: 600, minBytes: 1, topics: [.init(topic: "ordered", partitions: [
            .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)
        ])])
        try await h.send(.fetch, version: 12, correlationId: 2, fetch)
        try await h.send(.apiVersions, version: 3, correlationId: 3, ApiVersionsRequest(clientSoftwareName: "t", clientSoftwareVersion: "1"))
        try await h.send(.heartbeat, version: 0, correlationId: 4, HeartbeatRequest(groupId: "g", generationId: 1, memberId: "m"))
        (id, body) = try await h.receive(flexibleHeader: true)
        #expect(id == 2)
        #expect(NIODeadline.now() - started >= .milliseconds(500), "the fetch waited for data (long poll)")
        let empty = try FetchResponse(from: &body, version: 12)
        #expect(empty.responses.first?.partitions.first?.records == .buffer(ByteBuffer()))
        (id, _) = try await h.receive(flexibleHeader: false)
        #expect(id == 3, "ApiVersions, answered at once, still waits for the fetch before it")
        (id, body) = try await h.receive(flexibleHeader: false)
        let heartbeat = try HeartbeatResponse(from: &body, version: 0)
        #expect(id == 4 && heartbeat.errorCode == KafkaErrorCode.unknownMemberId.rawValue)
        try await h.stop()
    }

    /// Fetched records are the produced batch, byte for byte (sent with sendfile), at v4 and v12,
    /// whatever Kafka codec compressed it (snappy and zstd included: codec ids 2 and 4 are taken).
    @Test(arguments: CompressionCodec.supported)
    func fetchReturnsTheProducedBatch(codec: CompressionCodec) async throws {
        let h = try await KafkaHarness()
        _ = try await h.broker.createTopic("bytes", partitions: 1)
        var builder = RecordBatchBuilder(codec: codec)
        for i in 0..<50 { builder.append(key: Array("k\(i)".utf8), value: Array("value-\(i)".utf8), timestamp: 1_700_000_000_000 + Int64(i)) }
        let batch = try builder.build()
        let produce = ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [.init(name: "bytes", partitionData: [.init(index: 0, records: .buffer(batch))])])
        try await h.send(.produce, version: 9, correlationId: 10, produce)
        var (_, body) = try await h.receive(flexibleHeader: true)
        let produced = try ProduceResponse(from: &body, version: 9)
        #expect(produced.responses.first?.partitionResponses.first?.errorCode == 0)
        #expect(produced.responses.first?.partitionResponses.first?.baseOffset == 0)

        for (version, flexible) in [(Int16(4), false), (12, true)] {
            let fetch = FetchRequest(maxWaitMs: 100, minBytes: 1, topics: [.init(topic: "bytes", partitions: [
                .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)
            ])])
            try await h.send(.fetch, version: version, correlationId: 20 + Int32(version), fetch)
            (_, body) = try await h.receive(flexibleHeader: flexible)
            let response = try FetchResponse(from: &body, version: version)
            let partition = try #require(response.responses.first?.partitions.first)
            #expect(partition.errorCode == 0 && partition.highWatermark == 50)
            #expect(partition.records == .buffer(batch), "v\(version): the stored batch is the produced one, byte for byte")
            #expect(body.readableBytes == 0)
        }
        try await h.stop()
    }

    /// A batch with an unknown codec id (5-7) is refused with UNSUPPORTED_COMPRESSION_TYPE; one
    /// whose snappy or zstd records are damaged (CRC recomputed, so only the records are wrong)
    /// with CORRUPT_MESSAGE; one that inflates past the decompression limit
    /// (`maxDecompressedBatchBytes`, 1 MiB here) with MESSAGE_TOO_LARGE. Nothing of them is stored.
    @Test func badlyCompressedBatchesAreRefusedPerPartition() async throws {
        let h = try await KafkaHarness(broker: { $0.maxDecompressedBatchBytes = 1 << 20 })
        _ = try await h.broker.createTopic("codecs", partitions: 1)
        func batch(_ codec: CompressionCodec, value: [UInt8] = Array("value".utf8)) throws -> ByteBuffer {
            var builder = RecordBatchBuilder(codec: codec)
            for i in 0..<20 { builder.append(key: nil, value: value, timestamp: 1_700_000_000_000 + Int64(i)) }
            return try builder.build()
        }
        var unknown = try batch(.none)
        unknown.setInteger(Int16(5), at: RecordBatchHeader.Position.attributes)
        RecordBatch.writeCRC(in: &unknown, at: 0)
        var cases: [(ByteBuffer, KafkaErrorCode)] = [(unknown, .unsupportedCompressionType)]
        for codec in [CompressionCodec.snappy, .zstd] {
            var damaged = try batch(codec)
            // Cut the compressed records short (the length and CRC made to match).
            damaged.moveWriterIndex(to: damaged.writerIndex - 3)
            damaged.setInteger(Int32(damaged.readableBytes - 12), at: RecordBatchHeader.Position.batchLength)
            RecordBatch.writeCRC(in: &damaged, at: 0)
            cases.append((damaged, .corruptMessage))
            // 20 records of 128 KiB of zeros each: 2.5 MiB once inflated, over the limit.
            cases.append((try batch(codec, value: [UInt8](repeating: 0, count: 128 << 10)), .messageTooLarge))
        }
        for (index, (records, expected)) in cases.enumerated() {
            let produce = ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [.init(name: "codecs", partitionData: [.init(index: 0, records: .buffer(records))])])
            try await h.send(.produce, version: 9, correlationId: Int32(index), produce)
            var (_, body) = try await h.receive(flexibleHeader: true)
            let response = try ProduceResponse(from: &body, version: 9)
            #expect(response.responses.first?.partitionResponses.first?.errorCode == expected.rawValue, "case \(index)")
        }
        #expect(try h.broker.describeTopic("codecs").partitions.first?.logEndOffset == 0)
        try await h.stop()
    }

    @Test func idleConnectionsAreClosedButNotWhileARequestIsOpen() async throws {
        let h = try await KafkaHarness(idleTimeoutSeconds: 1)
        _ = try await h.broker.createTopic("idle", partitions: 1)
        // A long poll of 2.5 s outlives the idle timeout: the connection stays for its answer.
        let fetch = FetchRequest(maxWaitMs: 2500, minBytes: 1, topics: [.init(topic: "idle", partitions: [
            .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)
        ])])
        try await h.send(.fetch, version: 11, correlationId: 1, fetch)
        let (id, _) = try await h.receive(flexibleHeader: false)
        #expect(id == 1)
        // Then, with nothing in flight, the idle connection is closed.
        let started = NIODeadline.now()
        #expect(await h.responses.next() == nil)
        #expect(NIODeadline.now() - started < .seconds(5))
        try await h.stop()
    }

    /// An idempotent producer's retried batch is answered with the original offsets and
    /// stored once; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
    @Test func idempotentRetriesAreStoredOnce() async throws {
        let h = try await KafkaHarness()
        _ = try await h.broker.createTopic("idem", partitions: 1)
        try await h.send(.initProducerId, version: 4, correlationId: 1, InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60000))
        var (_, body) = try await h.receive(flexibleHeader: true)
        let producer = try InitProducerIdResponse(from: &body, version: 4)
        #expect(producer.errorCode == 0 && producer.producerId >= 0 && producer.producerEpoch == 0)

        func batch(sequence: Int32, count: Int) throws -> ByteBuffer {
            var builder = RecordBatchBuilder(
                codec: .lz4, producerId: producer.producerId, producerEpoch: producer.producerEpoch, baseSequence: sequence)
            for i in 0..<count { builder.append(key: nil, value: Array("v\(sequence)-\(i)".utf8), timestamp: 1_700_000_000_000) }
            return try builder.build()
        }
        func produce(_ records: ByteBuffer, id: Int32) async throws -> ProduceResponse.Topic.Partition {
            let request = ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [.init(name: "idem", partitionData: [.init(index: 0, records: .buffer(records))])])
            try await h.send(.produce, version: 9, correlationId: id, request)
            var (_, body) = try await h.receive(flexibleHeader: true)
            return try #require(try ProduceResponse(from: &body, version: 9).responses.first?.partitionResponses.first)
        }
        let first = try batch(sequence: 0, count: 10)
        let second = try batch(sequence: 10, count: 5)
        #expect(try await produce(first, id: 2).baseOffset == 0)
        #expect(try await produce(second, id: 3).baseOffset == 10)
        let retried = try await produce(first, id: 4)
        #expect(retried.errorCode == 0 && retried.baseOffset == 0, "a duplicate is answered with the original offset")
        let gap = try await produce(try batch(sequence: 40, count: 1), id: 5)
        #expect(gap.errorCode == KafkaErrorCode.outOfOrderSequenceNumber.rawValue)
        #expect(try h.broker.listOffset(TopicPartition("idem", 0), .latest).offset == 15, "the retry was not stored again")
        try await h.stop()
    }

    @Test func unsupportedVersionsAreAnsweredNotDropped() async throws {
        let h = try await KafkaHarness()
        try await h.send(.apiVersions, version: 42, correlationId: 5, ApiVersionsRequest())
        var (id, body) = try await h.receive(flexibleHeader: false)
        let versions = try ApiVersionsResponse(from: &body, version: 0)
        #expect(id == 5 && versions.errorCode == KafkaErrorCode.unsupportedVersion.rawValue)
        #expect(versions.apiKeys.count == KafkaApiKey.allCases.count)
        let fetch = try #require(versions.apiKeys.first { $0.apiKey == KafkaApiKey.fetch.rawValue })
        #expect(fetch.minVersion == 4 && fetch.maxVersion == 12)
        // Produce v0-2 are advertised (librdkafka 2.0.2 compresses only then) but refused per partition.
        let produce = try #require(versions.apiKeys.first { $0.apiKey == KafkaApiKey.produce.rawValue })
        #expect(produce.minVersion == 0)
        let old = ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [.init(name: "t", partitionData: [.init(index: 0, records: .buffer(ByteBuffer(bytes: [0, 1, 2])))])])
        try await h.send(.produce, version: 2, correlationId: 7, old)
        (id, body) = try await h.receive(flexibleHeader: false)
        let refused = try ProduceResponse(from: &body, version: 2)
        #expect(id == 7 && refused.responses.first?.partitionResponses.first?.errorCode == KafkaErrorCode.unsupportedForMessageFormat.rawValue)
        try await h.send(.fetch, version: 13, correlationId: 6, ApiVersionsRequest())
        (id, body) = try await h.receive(flexibleHeader: false)
        #expect(id == 6 && body.readInteger(as: Int16.self) == KafkaErrorCode.unsupportedVersion.rawValue)
        try await h.stop()
    }
}

@Suite struct AdvertisedAddressTests {
    /// A wildcard or `localhost` is never sent to clients as an address to connect to.
    @Test func wildcardsAndLocalhostAdvertiseLoopback() {
        for host in ["0.0.0.0", "", "::", "localhost"] {
            #expect(KafkaListener.defaultAdvertisedHost(forBoundHost: host) == "127.0.0.1")
        }
        #expect(KafkaListener.defaultAdvertisedHost(forBoundHost: "10.1.2.3") == "10.1.2.3")
    }
}

import Foundation
import SpoolTestSupport
import NIOCore
import NIOPosix
import SpoolBroker
import SpoolServer
import SpoolStorage
import SpoolClient
import SpoolProtocol
import SpoolRecords
import Testing

/// A broker on 127.0.0.1 with an ephemeral port and a temporary data directory.
final class TestBroker: @unchecked Sendable {
    let directory: String
    var server: SpoolServer!
    let configure: @Sendable (inout BrokerConfig) -> Void

    init(configure: @escaping @Sendable (inout BrokerConfig) -> Void = { _ in }) async throws {
        directory = NSTemporaryDirectory() + "spool-broker-" + UUID().uuidString
        self.configure = configure
        try await start()
    }

    func start() async throws {
        var config = BrokerConfig(dataDirectory: directory)
        config.port = 0
        config.threads = 2
        configure(&config)
        server = try await SpoolServer.start(config: config)
    }

    func restart() async throws {
        try await server.shutdown()
        try await start()
    }

    func connect() async throws -> SpoolConnection {
        try await SpoolConnection.connect(host: "127.0.0.1", port: server.port)
    }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The codecs of every batch in the partitions' segment files.
func storedCodecs(_ broker: TestBroker, topic: String, partitions: Int32) throws -> Set<CompressionCodec> {
    var codecs: Set<CompressionCodec> = []
    for p in 0..<partitions {
        let folder = "\(broker.directory)/\(topic)-\(p)"
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix(".log") {
            var reader = RecordBatchReader(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)"))))
            while let batch = try reader.next() { codecs.insert(batch.codec) }
        }
    }
    return codecs
}

@Suite(.serialized) struct EndToEndTests {
    @Test func concurrentProducersEveryCodecReadBackInOrder() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        let admin = SpoolAdmin(connection)
        try await admin.createTopic("events", partitions: 4)
        let perProducer = 300
        let codecs = CompressionType.supported
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, codec) in codecs.enumerated() {
                group.addTask {
                    var config = ProducerConfig()
                    config.compression = codec
                    config.batchBytes = 2048
                    config.acks = i % 2 == 1 ? .all : .leader
                    let producer = SpoolProducer(connection: connection, config: config)
                    // Sent one after another (each call queues its record and returns), so
                    // each producer's order per key is defined and must be kept.
                    for n in 0..<perProducer {
                        try await producer.send(topic: "events", key: Array("k\(n % 10)".utf8), value: Array("\(codec)-\(n)".utf8)) { _ in }
                    }
                    try await producer.flush()
                }
            }
            try await group.waitForAll()
        }
        for consumerIndex in 0..<2 { // two independent consumers each get everything
            let consumer = SpoolConsumer(connection: consumerIndex == 0 ? connection : try await broker.connect(), maxWaitMillis: 50)
            try await consumer.assign(topic: "events", from: .beginning)
            var got: [ConsumerRecord] = []
            let deadline = ContinuousClock.now + .seconds(20)
            while got.count < perProducer * codecs.count && ContinuousClock.now < deadline {
                got += try await consumer.poll()
            }
            #expect(got.count == perProducer * codecs.count)
            #expect(Set(got.map { String(buffer: $0.value!) }).count == perProducer * codecs.count)
            for p in Int32(0)..<4 {
                let offsets = got.filter { $0.partition == p }.map(\.offset)
                #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(p) in order without gaps")
            }
            // Each producer's records of one key come back in the order they were sent.
            for codec in codecs {
                for k in 0..<10 {
                    let sequence = got.filter { String(buffer: $0.key!) == "k\(k)" && String(buffer: $0.value!).hasPrefix("\(codec)-") }
                        .sorted { $0.offset < $1.offset }
                        .map { Int(String(buffer: $0.value!).split(separator: "-").last!)! }
                    #expect(sequence == sequence.sorted() && sequence.count == perProducer / 10, "\(codec) key k\(k): \(sequence)")
                }
            }
            // Same key, same partition (Kafka's murmur2 partitioner).
            for r in got {
                #expect(r.partition == KafkaPartitioner.partition(forKey: Array(String(buffer: r.key!).utf8), partitions: 4))
            }
        }
        // The log holds each producer's batches compressed as it sent them.
        #expect(try storedCodecs(broker, topic: "events", partitions: 4) == Set(codecs.map { CompressionCodec(name: $0.name)! }))
        await connection.close()
        await broker.stop()
    }

    /// Many tasks sending payload-carrying frames on one connection at once: every frame must
    /// arrive whole (a header and its payload may never be split by another task's frame).
    @Test func concurrentProduceCallsOnOneConnectionStayFramed() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("mux", partitions: 3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<16 {
                group.addTask {
                    for i in 0..<40 {
                        var builder = RecordBatchBuilder(codec: .lz4)
                        for j in 0..<(1 + (i * 7 + t) % 30) { builder.append(key: nil, value: Array("t\(t)-\(i)-\(j)".utf8), timestamp: 1) }
                        let batch = try builder.build()
                        var request = Spool_V1_ProduceRequest()
                        request.topic = "mux"
                        var p = Spool_V1_ProducePartition()
                        p.partition = Int32(t % 3)
                        p.bytes = UInt32(batch.readableBytes)
                        request.partitions = [p]
                        let response: Spool_V1_ProduceResponse = try await connection.call(.produce, request, payload: batch)
                        #expect(response.results.first?.code == .ok)
                    }
                }
            }
            try await group.waitForAll()
        }
        await connection.close()
        await broker.stop()
    }

    /// Records sent one after another get increasing offsets within a partition, even with
    /// many small batches in flight at once.
    @Test func producerKeepsSendOrderWithinAPartition() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("ordered", partitions: 2)
        var config = ProducerConfig()
        config.batchBytes = 256
        config.maxInFlightRequests = 16
        config.lingerMillis = 0
        let producer = SpoolProducer(connection: connection, config: config)
        let results = NIOLockedValueBoxForTests<[Int: RecordMetadata]>([:])
        for i in 0..<3000 {
            try await producer.send(topic: "ordered", key: Array("k\(i % 2)".utf8), value: Array("\(i)".utf8)) { r in
                if case .success(let m) = r { results.withLockedValue { $0[i] = m } }
            }
        }
        try await producer.flush()
        let all = results.withLockedValue { $0 }
        #expect(all.count == 3000)
        for key in 0..<2 {
            let offsets = (0..<3000).filter { $0 % 2 == key }.map { all[$0]!.offset }
            #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count, "send order kept for key \(key)")
        }
        await connection.close()
        await broker.stop()
    }

    /// Shutdown answers what is in flight (a long poll returns at once instead of being cut
    /// off), refuses nothing silently, and completes quickly.
    @Test func gracefulShutdownAnswersCallsInFlight() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("bye")
        var request = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = "bye"
        request.partitions = [p]
        request.maxWaitMs = 30_000
        let pending = try connection.startCall(.fetch, request)
        let core = broker.server.broker
        #expect(await waitFor { core.waitingForAppends == 1 }, "the fetch is waiting")
        let started = ContinuousClock.now
        try await broker.server.shutdown()
        let reply = try await pending.reply
        let response = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: reply.message)
        #expect(response.partitions.first?.code == .ok && response.partitions.first?.bytes == 0)
        #expect(ContinuousClock.now - started < .seconds(5))
        // The connection was told why it is closing; later calls try to reconnect and fail
        // cleanly, with a retriable error (nothing listens any more).
        await #expect { _ = try await SpoolAdmin(connection).listTopics() } throws: { isRetriable($0) }
        #expect(FileManager.default.fileExists(atPath: broker.directory + "/.clean-shutdown"))
        await connection.close()
        try? FileManager.default.removeItem(atPath: broker.directory)
    }

    /// acks=none: the broker answers before the append, so offsets are unknown (-1) for
    /// every record; the records still land, in order.
    @Test func acksNoneReportsUnknownOffsetsAndStillAppends() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("fire")
        var config = ProducerConfig()
        config.acks = .none
        let producer = SpoolProducer(connection: connection, config: config)
        var offsets: [Int64] = []
        for i in 0..<20 { offsets.append(try await producer.send(topic: "fire", partition: 0, value: Array("\(i)".utf8)).offset) }
        #expect(offsets == Array(repeating: -1, count: 20))
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 100)
        try await consumer.assign(topic: "fire", from: .beginning)
        var got: [String] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while got.count < 20 && ContinuousClock.now < deadline { got += try await consumer.poll().map { String(buffer: $0.value!) } }
        #expect(got == (0..<20).map { "\($0)" })
        await connection.close()
        await broker.stop()
    }

    @Test func replayFromTheBeginningAfterARestart() async throws {
        let broker = try await TestBroker()
        var connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("replay", partitions: 1, configs: ["compression.type": "lz4"])
        let producer = SpoolProducer(connection: connection)
        for i in 0..<50 { _ = try await producer.send(topic: "replay", value: Array("r\(i)".utf8)) }
        await connection.close()
        try await broker.restart()
        connection = try await broker.connect()
        let consumer = SpoolConsumer(connection: connection, group: "g", maxWaitMillis: 10)
        try await consumer.assign(topic: "replay", from: .committed(fallback: .beginning))
        var got: [String] = []
        while got.count < 50 { got += try await consumer.poll().map { String(buffer: $0.value!) } }
        #expect(got == (0..<50).map { "r\($0)" })
        try await consumer.commit()
        #expect(try await SpoolAdmin(connection).committedOffsets(group: "g").first?.offset == 50)
        await connection.close()
        await broker.stop()
    }

    @Test func aLongPollReturnsAsSoonAsDataArrives() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("poll")
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 10_000)
        try await consumer.assign(topic: "poll", from: .end)
        let started = ContinuousClock.now
        async let records = consumer.poll()
        let core = broker.server.broker
        #expect(await waitFor { core.waitingForAppends == 1 }, "the fetch is waiting")
        let producer = SpoolProducer(connection: try await broker.connect())
        _ = try await producer.send(topic: "poll", value: Array("wake".utf8))
        let got = try await records
        let waited = ContinuousClock.now - started
        #expect(got.map { String(buffer: $0.value!) } == ["wake"])
        #expect(waited < .seconds(5), "the fetch waited \(waited), not until its 10 s deadline")
        await connection.close()
        await broker.stop()
    }

    @Test func errorsAreStatuses() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        let admin = SpoolAdmin(connection)
        await #expect { _ = try await admin.describeTopic("missing") } throws: { ($0 as? SpoolStatusError)?.code == .notFound }
        try await admin.createTopic("t", partitions: 2)
        await #expect { try await admin.createTopic("t") } throws: { ($0 as? SpoolStatusError)?.code == .alreadyExists }
        await #expect { try await admin.createTopic("bad name") } throws: { ($0 as? SpoolStatusError)?.code == .invalidArgument }
        // A batch with a broken CRC: DATA_LOSS, and nothing is appended.
        var builder = RecordBatchBuilder()
        builder.append(key: nil, value: [1, 2, 3], timestamp: 1)
        var batch = try builder.build()
        batch.setInteger(UInt8(0x55), at: batch.writerIndex - 1)
        var request = Spool_V1_ProduceRequest()
        request.topic = "t"
        var p = Spool_V1_ProducePartition()
        p.partition = 0
        p.bytes = UInt32(batch.readableBytes)
        request.partitions = [p]
        let response: Spool_V1_ProduceResponse = try await connection.call(.produce, request, payload: batch)
        #expect(response.results.first?.code == .dataLoss)
        #expect(try await admin.listOffset(topic: "t", partition: 0, .latest) == 0)
        // Offset out of range on fetch.
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 0, autoOffsetReset: .error)
        try await consumer.seek(topic: "t", partition: 0, to: .offset(99))
        await #expect { _ = try await consumer.poll() } throws: { ($0 as? SpoolClientError)?.code == .offsetOutOfRange }
        // With auto.offset.reset the consumer moves to the log's start instead.
        let resetting = SpoolConsumer(connection: connection, maxWaitMillis: 0, autoOffsetReset: .earliest)
        try await resetting.seek(topic: "t", partition: 0, to: .offset(99))
        #expect(try await resetting.poll().isEmpty)
        #expect(resetting.position.first { $0.partition == 0 }?.offset == 0)
        // Unknown partition.
        await #expect { _ = try await admin.listOffset(topic: "t", partition: 7, .latest) } throws: { ($0 as? SpoolStatusError)?.code == .notFound }
        await connection.close()
        await broker.stop()
    }

    @Test func garbageOnTheSocketDoesNotHurtOtherClients() async throws {
        let broker = try await TestBroker()
        let good = try await broker.connect()
        try await SpoolAdmin(good).createTopic("safe")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var rng = SeededRandom(test: "garbageOnTheSocketDoesNotHurtOtherClients")
        let seed = rng.seed
        for round in 0..<5 {
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: broker.server.port).get()
            var junk = ByteBuffer()
            if round == 0 {
                junk.writeInteger(UInt32(0x7FFF_FFFF)) // an absurd frame length
            } else {
                junk.writeBytes((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
            }
            try? await channel.writeAndFlush(junk)
            // The broker answers GOAWAY and closes.
            #expect(await waitFor { !channel.isActive }, "round \(round) of seed \(seed): the broker closed the connection")
        }
        try await group.shutdownGracefully()
        // The well-behaved client is unaffected.
        let producer = SpoolProducer(connection: good)
        let where_ = try await producer.send(topic: "safe", value: Array("still fine".utf8))
        #expect(where_.offset == 0)
        await good.close()
        await broker.stop()
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .zstd])
    func looseRecordsAreAccumulatedIntoBatches(codec: CompressionCodec) async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("loose", partitions: 2, configs: ["compression.type": codec.description, "linger.ms": "20"])
        var request = Spool_V1_ProduceRecordsRequest()
        request.topic = "loose"
        request.acks = .all
        request.records = (0..<100).map { i in
            var r = Spool_V1_LooseRecord()
            r.partition = -1
            r.key = Data("key-\(i % 7)".utf8)
            r.value = Data("v\(i)".utf8)
            return r
        }
        let response: Spool_V1_ProduceRecordsResponse = try await connection.call(.produceRecords, request)
        #expect(response.results.count == 100)
        #expect(response.results.allSatisfy { $0.code == .ok })
        let description = try await SpoolAdmin(connection).describeTopic("loose")
        #expect(description.partitions.reduce(0) { $0 + $1.logEndOffset } == 100)
        // Few batches, compressed with the topic's codec.
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 0)
        try await consumer.assign(topic: "loose", from: .beginning)
        let got = try await consumer.poll()
        #expect(got.count == 100)
        for (i, result) in response.results.enumerated() {
            let record = got.first { $0.partition == result.partition && $0.offset == result.offset }
            #expect(record.map { String(buffer: $0.value!) } == "v\(i)")
        }
        #expect(try storedCodecs(broker, topic: "loose", partitions: 2) == [codec])
        await connection.close()
        await broker.stop()
    }

    /// The broker sends a subscriber no more than its credit (plus at most one batch),
    /// whatever the socket could take, and the rest once it grants more. Checked with a raw
    /// client that reads everything the broker sends: a ListTopics answer marks the point
    /// by which every event sent before it has arrived.
    @Test func subscribeRespectsCredit() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("push", configs: ["compression.type": "none"])
        var config = ProducerConfig()
        config.batchBytes = 1024
        config.compression = .none
        let producer = SpoolProducer(connection: connection, config: config)
        for i in 0..<200 { _ = try await producer.send(topic: "push", value: Array("\(i)-\(String(repeating: "x", count: 100))".utf8)) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try await RawClient(port: broker.server.port, group: group)
        var request = Spool_V1_SubscribeRequest()
        request.topic = "push"
        request.offset = 0
        request.initialCreditBytes = 4096
        request.maxBytesPerEvent = 2048
        client.write(try RawClient.frame(method: .subscribe, stream: 1, request))
        var sync = 100 as UInt32
        func synced() async throws -> [Frame] {
            sync += 1
            let id = sync
            client.write(try RawClient.frame(method: .listTopics, stream: id, Spool_V1_ListTopicsRequest()))
            #expect(await waitFor { client.frames.contains { $0.streamID == id } })
            return client.frames.filter { $0.streamID == 1 }
        }
        let events = try await synced()
        let received = events.reduce(0) { $0 + $1.payload.readableBytes }
        var records = try events.flatMap { try decodeOffsets($0.payload) }
        #expect(received > 0 && received <= 4096 + 2048, "\(received) bytes sent on 4096 bytes of credit")
        #expect(records.count < 200)
        // Still nothing more without credit, however long the socket stays writable.
        #expect(try await synced().count == events.count)
        // Grant the rest; every record arrives, in order.
        var credit = Spool_V1_Credit()
        credit.bytes = 1 << 20
        client.write(try RawClient.frame(.credit, stream: 1, credit))
        #expect(await waitFor { ((try? client.frames.filter { $0.streamID == 1 }.flatMap { try decodeOffsets($0.payload) }) ?? []).count >= 200 })
        records = try client.frames.filter { $0.streamID == 1 }.flatMap { try decodeOffsets($0.payload) }
        #expect(records == Array(0..<200))
        // New appends are pushed as they happen.
        _ = try await producer.send(topic: "push", value: Array("late".utf8))
        #expect(await waitFor { ((try? client.frames.filter { $0.streamID == 1 }.flatMap { try decodeOffsets($0.payload) }) ?? []).last == 200 })
        await client.close()
        try await group.shutdownGracefully()
        await connection.close()
        await broker.stop()
    }
}

func decodeOffsets(_ payload: ByteBuffer) throws -> [Int64] {
    var reader = RecordBatchReader(payload)
    var out: [Int64] = []
    while let batch = try reader.next() { out += try batch.records().map(\.offset) }
    return out
}

/// A small lock box for tests (NIOConcurrencyHelpers is not a test dependency).
final class NIOLockedValueBoxForTests<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLockedValue<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

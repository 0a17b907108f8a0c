import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SpoolBroker
import SpoolServer
import SpoolClient
import SpoolProtocol
import SpoolRecords
import Testing

extension TestBroker {
    /// Starts the broker again (after `stopKeepingData`) on `port`, where clients reconnect.
    func start(port: Int) async throws {
        var config = BrokerConfig(dataDirectory: directory)
        config.port = port
        config.threads = 2
        configure(&config)
        server = try await SpoolServer.start(config: config)
    }

    /// Graceful shutdown that keeps the data directory; returns the port it listened on.
    func stopKeepingData() async throws -> Int {
        let port = server.port
        try await server.shutdown()
        return port
    }
}

/// Reads every record of `topic` (all partitions) from the beginning.
func readAll(_ broker: TestBroker, topic: String, count: Int) async throws -> [ConsumerRecord] {
    let connection = try await broker.connect()
    let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 50)
    try await consumer.assign(topic: topic, from: .beginning)
    var got: [ConsumerRecord] = []
    let deadline = ContinuousClock.now + .seconds(20)
    while got.count < count && ContinuousClock.now < deadline { got += try await consumer.poll() }
    await connection.close()
    return got
}

@Suite(.serialized) struct ProducerTests {
    /// A record over the broker's frame limit or the topic's max.message.bytes fails
    /// with `recordTooLarge` before anything is sent; sends around it succeed and the
    /// shared connection keeps serving (an oversized frame would make the broker GOAWAY).
    @Test func oversizedRecordFailsAloneWhileTheConnectionKeepsServing() async throws {
        let broker = try await TestBroker { $0.maxFrameBytes = 128 << 10 }
        let connection = try await broker.connect()
        let admin = SpoolAdmin(connection)
        try await admin.createTopic("limits", partitions: 2) // max.message.bytes 1 MiB: over the frame limit
        try await admin.createTopic("small", configs: ["max.message.bytes": "4096"])
        let producer = SpoolProducer(connection: connection)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    _ = try await producer.send(topic: "limits", key: Array("k\(i)".utf8), value: Array("fine-\(i)".utf8))
                }
            }
            group.addTask {
                await #expect(throws: ProducerError.self) {
                    do {
                        _ = try await producer.send(topic: "limits", value: [UInt8](repeating: 7, count: 200 << 10))
                    } catch let error as ProducerError {
                        #expect(error.code == .recordTooLarge)
                        throw error
                    }
                }
            }
            try await group.waitForAll()
        }
        // The topic limit, worst-case compression included: incompressible bytes just under it pass.
        var rng = SystemRandomNumberGenerator()
        let small = try await producer.topic("small")
        #expect(small.maxRecordBytes < 4096 && small.maxRecordBytes > 3900)
        let fits = (0..<(small.maxRecordBytes - 32)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        _ = try await producer.send(topic: "small", value: fits)
        let failure = NIOLockedValueBox<Error?>(nil)
        try await producer.send(topic: "small", value: [UInt8](repeating: 1, count: 8192)) { result in
            if case .failure(let error) = result { failure.withLockedValue { $0 = error } }
        }
        #expect((failure.withLockedValue { $0 } as? ProducerError)?.code == .recordTooLarge)
        let handle = try await producer.topic("small")
        #expect(throws: ProducerError.self) {
            try [UInt8](repeating: 1, count: 8192).withUnsafeBytes { _ = try producer.trySend(handle, value: $0) }
        }
        // Still the same connection, still serving.
        let after = try await producer.send(topic: "limits", partition: 0, value: Array("after".utf8))
        #expect(after.partition == 0)
        #expect(try await admin.listTopics().count == 2)
        let records = try await readAll(broker, topic: "limits", count: 201)
        #expect(records.count == 201)
        try await producer.close()
        await connection.close()
        await broker.stop()
    }

    /// Completions are per batch inside the producer, yet every send learns its own
    /// offset: the record read back at that offset is the one sent, on every API.
    @Test func everySendLearnsItsOwnOffset() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("offsets", partitions: 3)
        var config = ProducerConfig()
        config.batchBytes = 2048
        config.lingerMillis = 1
        let reports = NIOLockedValueBox<[DeliveryReport]>([])
        let producer = SpoolProducer(connection: connection, config: config) { report in
            reports.withLockedValue { $0.append(report) }
        }
        let awaited = 600, called = 300, fired = 300
        let sent = NIOLockedValueBox<[String: RecordMetadata]>([:])
        try await withThrowingTaskGroup(of: (String, RecordMetadata).self) { group in
            for i in 0..<awaited {
                group.addTask {
                    let value = "awaited-\(i)"
                    return (value, try await producer.send(topic: "offsets", key: Array("k\(i % 7)".utf8), value: Array(value.utf8)))
                }
            }
            for try await (value, metadata) in group { sent.withLockedValue { $0[value] = metadata } }
        }
        for i in 0..<called {
            let value = "called-\(i)"
            try await producer.send(topic: "offsets", value: Array(value.utf8)) { result in
                if case .success(let metadata) = result { sent.withLockedValue { $0[value] = metadata } }
            }
        }
        let handle = try await producer.topic("offsets")
        for i in 0..<fired {
            try await producer.send(handle, partition: Int32(i % 3), value: ByteBuffer(string: "fired-\(i)"))
        }
        try await producer.flush()

        let metadata = sent.withLockedValue { $0 }
        #expect(metadata.count == awaited + called)
        #expect(Set(metadata.values.map { "\($0.partition)/\($0.offset)" }).count == metadata.count)
        let records = try await readAll(broker, topic: "offsets", count: awaited + called + fired)
        #expect(records.count == awaited + called + fired)
        var byPosition: [String: String] = [:]
        for r in records { byPosition["\(r.partition)/\(r.offset)"] = String(buffer: r.value!) }
        for (value, m) in metadata {
            #expect(byPosition["\(m.partition)/\(m.offset)"] == value)
        }
        // The delivery reports tile each partition's offsets exactly, with no failure.
        let all = reports.withLockedValue { $0 }
        #expect(all.allSatisfy { $0.error == nil && $0.attempts == 1 })
        #expect(all.reduce(0) { $0 + $1.recordCount } == awaited + called + fired)
        for p in Int32(0)..<3 {
            let ranges = all.filter { $0.partition == p }.map { $0.baseOffset..<($0.baseOffset + Int64($0.recordCount)) }
                .sorted { $0.lowerBound < $1.lowerBound }
            var next: Int64 = 0
            for r in ranges {
                #expect(r.lowerBound == next)
                next = r.upperBound
            }
            #expect(next == Int64(records.filter { $0.partition == p }.count))
        }
        try await producer.close()
        await connection.close()
        await broker.stop()
    }

    /// Sends keep going while the broker restarts: batches that fail (their connection
    /// cut with requests in flight, refused while the broker drains, nothing listening)
    /// are retried with backoff on a new connection, and every record lands, in send order
    /// within its partition; the idempotent producer writes none twice. The client talks
    /// to the broker through a relay that holds the broker's answers and then cuts the
    /// connection, so at least one request is in flight when it breaks (the broker has
    /// seen it, perhaps appended it): a retry always happens, and the test checks it did.
    @Test(arguments: [false, true])
    func retriesAcrossABrokerRestartDeliverEverythingInOrder(idempotent: Bool) async throws {
        let broker = try await TestBroker()
        let proxy = try await CuttableProxy(targetPort: broker.server.port)
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: proxy.port)
        try await SpoolAdmin(connection).createTopic("restart", partitions: 2)
        var config = ProducerConfig()
        config.batchBytes = 1024
        config.lingerMillis = 1
        config.retryBackoffMillis = 20
        config.retryBackoffMaxMillis = 200
        config.deliveryTimeoutMillis = 30_000
        config.idempotent = idempotent
        let retried = NIOLockedValueBox(0)
        let delivered = NIOLockedValueBox(0)
        let producer = SpoolProducer(connection: connection, config: config) { report in
            if report.attempts > 1 { retried.withLockedValue { $0 += 1 } }
            if report.error == nil { delivered.withLockedValue { $0 += report.recordCount } }
        }
        let failures = NIOLockedValueBox<[Error]>([])
        let total = 3000
        let beforeHold = 1000
        // One task sends steadily; after the first 1,000 records it waits until the relay
        // holds answers, so that the rest go out while the connection is about to be cut.
        let sender = Task {
            for i in 0..<total {
                if i == beforeHold {
                    let deadline = ContinuousClock.now + .seconds(30)
                    while !proxy.isHolding && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
                }
                try await producer.send(topic: "restart", key: Array("k\(i % 2)".utf8), value: Array("\(i)".utf8)) { result in
                    if case .failure(let error) = result { failures.withLockedValue { $0.append(error) } }
                }
                if i % 10 == 0 { try await Task.sleep(for: .milliseconds(3)) }
            }
        }
        #expect(await waitFor(seconds: 30) { delivered.withLockedValue { $0 } >= 500 }, "records delivered before the cut")
        proxy.holdAnswers()
        #expect(await waitFor(seconds: 30) { proxy.requestBytesWhileHolding > 0 }, "a request went out whose answer is held")
        proxy.cut() // the client loses the call; the broker may have appended its batches
        #expect(proxy.cuts == 1)
        let port = try await broker.stopKeepingData() // batches in flight, then refusals, then GOAWAY
        try await Task.sleep(for: .milliseconds(300)) // nothing listens: sends queue up
        try await broker.start(port: port)
        try await sender.value
        try await producer.flush()
        #expect(failures.withLockedValue { $0 }.isEmpty)
        // The same connection, brought back.
        #expect(connection.isConnected)
        print("restart test: \(retried.withLockedValue { $0 }) batches needed more than one attempt")
        #expect(retried.withLockedValue { $0 } > 0, "the batches in flight on the cut connection were sent again")

        // Without idempotence a retried batch may be stored twice: read until every value came.
        let reading = try await broker.connect()
        let reader = SpoolConsumer(connection: reading, maxWaitMillis: 50)
        try await reader.assign(topic: "restart", from: .beginning)
        var records: [ConsumerRecord] = []
        var values = Set<String>()
        let readDeadline = ContinuousClock.now + .seconds(30)
        while values.count < total && ContinuousClock.now < readDeadline {
            let got = try await reader.poll()
            records += got
            for r in got { values.insert(String(buffer: r.value!)) }
        }
        await reading.close()
        var seen = Set<Int>()
        var lastPerPartition: [Int32: Int] = [:]
        var duplicates = 0
        for r in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let n = Int(String(buffer: r.value!))!
            if !seen.insert(n).inserted { duplicates += 1; continue } // at-least-once without idempotence
            #expect(n > lastPerPartition[r.partition, default: -1], "partition \(r.partition): \(n) after \(lastPerPartition[r.partition] ?? -1)")
            lastPerPartition[r.partition] = n
        }
        #expect(seen == Set(0..<total))
        if duplicates > 0 { print("restart test: \(duplicates) duplicates (at-least-once)") }
        if idempotent {
            #expect(duplicates == 0, "a retried batch the broker had appended is not stored twice")
            // Every batch carries the broker-issued producer id and a sequence.
            let reader = try await broker.connect()
            let consumer = SpoolConsumer(connection: reader, maxWaitMillis: 50)
            try await consumer.assign(topic: "restart", from: .beginning)
            var headers: [RecordBatchHeader] = []
            for _ in 0..<50 where headers.reduce(0, { $0 + Int($1.recordCount) }) < total {
                headers += try await consumer.pollBatches().map(\.batch.header)
            }
            #expect(!headers.isEmpty && headers.allSatisfy { $0.producerId >= 0 && $0.baseSequence >= 0 })
            await reader.close()
        }
        try await producer.close()
        await connection.close()
        try await proxy.close()
        await broker.stop()
    }

    /// A refused call (RESOURCE_EXHAUSTED: the connection's one call slot is taken by a
    /// long poll) is retried with backoff until it gets through; the partition's
    /// records stay in send order, and nothing is written twice.
    @Test func aRefusedRequestIsRetriedInOrder() async throws {
        let broker = try await TestBroker { $0.maxInFlightPerConnection = 1 }
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("busy")
        try await SpoolAdmin(connection).createTopic("empty")
        var config = ProducerConfig()
        config.lingerMillis = 0
        config.batchBytes = 1024
        config.retryBackoffMillis = 10
        config.retryBackoffMaxMillis = 40
        let attempts = NIOLockedValueBox<[Int]>([])
        let producer = SpoolProducer(connection: connection, config: config) { report in
            if report.error == nil { attempts.withLockedValue { $0.append(report.attempts) } }
        }
        _ = try await producer.topic("busy")
        // Occupy the slot: a fetch that long-polls an empty topic for 300 ms.
        var fetch = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = "empty"
        p.maxBytes = 1 << 20
        fetch.partitions = [p]
        fetch.maxWaitMs = 300
        fetch.minBytes = 1
        let poll = try connection.startCall(.fetch, fetch)
        let total = 200
        let failures = NIOLockedValueBox(0)
        for i in 0..<total {
            try await producer.send(topic: "busy", value: Array("\(i)-\(String(repeating: "x", count: 40))".utf8)) { result in
                if case .failure = result { failures.withLockedValue { $0 += 1 } }
            }
        }
        _ = try await poll.reply
        try await producer.flush()
        #expect(failures.withLockedValue { $0 } == 0)
        #expect(attempts.withLockedValue { $0 }.contains { $0 > 1 })
        let records = try await readAll(broker, topic: "busy", count: total)
        #expect(records.map { Int(String(buffer: $0.value!).split(separator: "-")[0])! } == Array(0..<total))
        try await producer.close()
        await connection.close()
        await broker.stop()
    }

    /// An idempotent batch refused for good leaves a gap in its partition's sequence;
    /// the producer bumps its epoch and starts every partition again at 0, so later
    /// sends are accepted instead of refused as out of order.
    @Test func anIdempotentProducerRecoversFromASequenceGap() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        let admin = SpoolAdmin(connection)
        try await admin.createTopic("gap", configs: ["compression.type": "producer"])
        var config = ProducerConfig()
        config.idempotent = true
        config.lingerMillis = 0
        let producer = SpoolProducer(connection: connection, config: config)
        for i in 0..<10 { _ = try await producer.send(topic: "gap", value: Array("before-\(i)".utf8)) }
        // The producer learnt a 1 MiB limit; the topic now takes 1 KiB batches: the broker refuses the next big one.
        try await admin.alterTopic("gap", set: ["max.message.bytes": "1024"])
        var rng = SystemRandomNumberGenerator()
        let big = (0..<4000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        await #expect(throws: SpoolStatusError.self) { _ = try await producer.send(topic: "gap", value: big) }
        var after: [Int64] = []
        for i in 0..<10 { after.append(try await producer.send(topic: "gap", value: Array("after-\(i)".utf8)).offset) }
        #expect(after == Array(10..<20))
        let records = try await readAll(broker, topic: "gap", count: 20)
        #expect(records.map { String(buffer: $0.value!) } == (0..<10).map { "before-\($0)" } + (0..<10).map { "after-\($0)" })
        try await producer.close()
        await connection.close()
        await broker.stop()
    }

    /// With the broker gone for good, a send fails with `deliveryTimedOut` once
    /// `deliveryTimeoutMillis` has passed, instead of hanging.
    @Test func aSendFailsAtItsDeliveryTimeoutWhenTheBrokerStaysDown() async throws {
        let broker = try await TestBroker()
        let connection = try await broker.connect()
        try await SpoolAdmin(connection).createTopic("gone")
        var config = ProducerConfig()
        config.deliveryTimeoutMillis = 400
        config.retryBackoffMillis = 20
        config.retryBackoffMaxMillis = 50
        let producer = SpoolProducer(connection: connection, config: config)
        _ = try await producer.send(topic: "gone", value: Array("before".utf8))
        _ = try await broker.stopKeepingData()
        let start = ContinuousClock.now
        await #expect(throws: ProducerError.self) {
            do {
                _ = try await producer.send(topic: "gone", value: Array("lost".utf8))
            } catch let error as ProducerError {
                #expect(error.code == .deliveryTimedOut)
                #expect(error.underlying != nil)
                throw error
            }
        }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(350) && waited < .seconds(5))
        try await producer.close()
        await connection.close()
        try? FileManager.default.removeItem(atPath: broker.directory)
    }
}

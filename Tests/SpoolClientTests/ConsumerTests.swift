import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SpoolClient
import SpoolProtocol
import SpoolRecords
import SpoolTestSupport
import Testing

/// The consumer's delivery and commit rules, against a real `spool broker` process.
@Suite struct ConsumerTests {
    /// A broker with topic `t` of `partitions` partitions holding `perPartition` records each
    /// (values "p-i"), and a connection to it.
    static func filled(partitions: Int32 = 4, perPartition: Int = 25) async throws -> (BrokerProcess, SpoolConnection) {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        try await SpoolAdmin(connection).createTopic("t", partitions: partitions)
        let producer = SpoolProducer(connection: connection)
        for p in 0..<partitions {
            for i in 0..<perPartition {
                try await producer.send(topic: "t", partition: p, value: Array("\(p)-\(i)".utf8)) { _ in }
            }
        }
        try await producer.flush()
        return (broker, connection)
    }

    static func committedTotal(_ connection: SpoolConnection, group: String) async throws -> Int64 {
        try await SpoolAdmin(connection).committedOffsets(group: group).reduce(0) { $0 + $1.offset }
    }

    static func config(group: String?, autoCommit: Bool = false) -> ConsumerConfig {
        var c = ConsumerConfig(group: group)
        c.maxWaitMillis = 50
        c.enableAutoCommit = autoCommit
        return c
    }

    @Test func positionsMoveWhenRecordsAreDeliveredNotWhenFetched() async throws {
        let (broker, connection) = try await Self.filled()
        _ = broker
        let consumer = SpoolConsumer(connection: connection, config: Self.config(group: "g"))
        try await consumer.assign(topic: "t", from: .beginning)
        let first = try await consumer.poll(maxRecords: 10)
        #expect(first.count == 10)
        try await consumer.commit()
        // All 100 records were fetched in that round; only the 10 delivered are committed.
        #expect(try await Self.committedTotal(connection, group: "g") == 10)
        // A second consumer of the group resumes right after them: nothing lost, nothing twice.
        let second = SpoolConsumer(connection: connection, config: Self.config(group: "g"))
        try await second.assign(topic: "t", from: .committed(fallback: .beginning))
        var rest: [String] = []
        while rest.count < 90 { rest += try await second.poll().map { String(buffer: $0.value!) } }
        let all = first.map { String(buffer: $0.value!) } + rest
        #expect(Set(all).count == 100 && all.count == 100)
        await connection.close()
    }

    @Test func theRecordIteratorDeliversOneRecordAtATime() async throws {
        let (broker, connection) = try await Self.filled(partitions: 2, perPartition: 50)
        _ = broker
        let consumer = SpoolConsumer(connection: connection, config: Self.config(group: "it"))
        try await consumer.assign(topic: "t", from: .beginning)
        var seen: [ConsumerRecord] = []
        for try await record in consumer.records() {
            seen.append(record)
            if seen.count == 7 { break }
        }
        try await consumer.commit()
        #expect(try await Self.committedTotal(connection, group: "it") == 7)
        // The records fetched but not delivered are still there for the next poll.
        let next = try await consumer.poll(maxRecords: 1000)
        #expect(next.count == 93)
        #expect(Set(next.map(\.offset)).isDisjoint(with: []) && Set((seen + Array(next)).map { "\($0.partition)/\($0.offset)" }).count == 100)
        await connection.close()
    }

    @Test func autoCommitCommitsOnlyWhatTheApplicationCameBackFrom() async throws {
        let (broker, connection) = try await Self.filled()
        _ = broker
        var config = Self.config(group: "auto", autoCommit: true)
        config.autoCommitIntervalMillis = 0
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.assign(topic: "t", from: .beginning)
        _ = try await consumer.poll(maxRecords: 10)
        #expect(try await Self.committedTotal(connection, group: "auto") == 0)
        _ = try await consumer.poll(maxRecords: 10)
        // The second poll committed the first poll's records, not its own.
        #expect(try await Self.committedTotal(connection, group: "auto") == 10)
        try await consumer.close()
        #expect(try await Self.committedTotal(connection, group: "auto") == 20)
        await connection.close()
    }

    @Test func commitOfOneRecordCommitsItsPartitionOnly() async throws {
        let (broker, connection) = try await Self.filled()
        _ = broker
        let consumer = SpoolConsumer(connection: connection, config: Self.config(group: "one"))
        try await consumer.assign(topic: "t", from: .beginning)
        let records = Array(try await consumer.poll(maxRecords: 100))
        let pick = records.first { $0.partition == 2 && $0.offset == 4 }!
        try await consumer.commit(pick)
        let committed = try await SpoolAdmin(connection).committedOffsets(group: "one")
        #expect(committed.map { "\($0.topic)-\($0.partition)@\($0.offset)" } == ["t-2@5"])
        await connection.close()
    }

    @Test func aFailedPartitionDoesNotSkipTheOthers() async throws {
        let (broker, connection) = try await Self.filled(partitions: 2, perPartition: 30)
        _ = broker
        var config = Self.config(group: nil)
        config.autoOffsetReset = .error
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.seek(topic: "t", partition: 0, to: .offset(500))
        try await consumer.seek(topic: "t", partition: 1, to: .offset(0))
        // Partition 1's records come first, all of them, once.
        var got: [Int64] = []
        var failure: Error?
        for _ in 0..<10 {
            do {
                got += try await consumer.poll(maxRecords: 7).map(\.offset)
            } catch {
                failure = error
                break
            }
        }
        #expect(got == Array(0..<30))
        let e = failure as? SpoolClientError
        #expect(e?.code == .offsetOutOfRange)
        #expect(e?.description == "offset 500 is outside the log of t-0, which holds offsets 0–29")
        await connection.close()
    }

    @Test func aPositionPastTheEndFollowsTheResetPolicyPerPartition() async throws {
        let (broker, connection) = try await Self.filled(partitions: 2, perPartition: 5)
        _ = broker
        var config = Self.config(group: nil)
        config.autoOffsetReset = .earliest
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.seek(topic: "t", partition: 0, to: .offset(3))
        try await consumer.seek(topic: "t", partition: 1, to: .offset(9)) // past the end of 5 records
        var got: [String] = []
        while got.count < 7 { got += try await consumer.poll().map { "\($0.partition)/\($0.offset)" } }
        #expect(got.sorted() == ["0/3", "0/4", "1/0", "1/1", "1/2", "1/3", "1/4"])
        await connection.close()
    }

    @Test func keysValuesAndHeadersAreViewsThatTellNullFromEmpty() async throws {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        try await SpoolAdmin(connection).createTopic("h", partitions: 1)
        let producer = SpoolProducer(connection: connection)
        try await producer.send(topic: "h", partition: 0, key: nil, value: Array("a".utf8), headers: [RecordHeader(key: "k", value: "v")]) { _ in }
        try await producer.send(topic: "h", partition: 0, key: [], value: nil) { _ in }
        try await producer.flush()
        let consumer = SpoolConsumer(connection: connection, config: Self.config(group: nil))
        try await consumer.assign(topic: "h", from: .beginning)
        var records: [ConsumerRecord] = []
        while records.count < 2 { records += try await consumer.poll() }
        #expect(records[0].key == nil && records[0].keyLength == nil && records[0].valueLength == 1)
        #expect(records[0].headers == [RecordHeader(key: "k", value: "v")])
        #expect(records[1].key == ByteBuffer() && records[1].keyLength == 0 && records[1].value == nil && records[1].valueLength == nil)
        await connection.close()
    }

    @Test func aConsumerRidesOutABrokerRestartWithoutLossOrDuplicates() async throws {
        let first = try BrokerProcess()
        let port = first.port
        var connectionConfig = ConnectionConfig(host: "127.0.0.1", port: port)
        connectionConfig.requestTimeoutMillis = 1_000 // a poll during the outage gives up after about this long
        let connection = try await SpoolConnection.connect(connectionConfig)
        try await SpoolAdmin(connection).createTopic("r", partitions: 2)
        let producer = SpoolProducer(connection: connection)
        for i in 0..<40 { try await producer.send(topic: "r", partition: Int32(i % 2), value: Array("\(i)".utf8)) { _ in } }
        try await producer.flush()
        var config = Self.config(group: nil)
        config.retryBackoffMillis = 20
        let retries = NIOLockedValueBox(0)
        config.onRetry = { _ in retries.withLockedValue { $0 += 1 } }
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.assign(topic: "r", from: .beginning)
        var got: [String] = []
        while got.count < 25 { got += try await consumer.poll(maxRecords: 5).map { String(buffer: $0.value!) } }
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()
        // Polls while the broker is down return nothing (no throw, no hang): each keeps
        // reconnecting with backoff until its deadline.
        for _ in 0..<3 { got += try await consumer.poll().map { String(buffer: $0.value!) } }
        let second = try BrokerProcess(arguments: ["broker", "--data-dir", first.directory, "--listen", "127.0.0.1:\(port)"])
        _ = second
        let more = try await SpoolConnection.connect(host: "127.0.0.1", port: port)
        let producer2 = SpoolProducer(connection: more)
        for i in 40..<60 { try await producer2.send(topic: "r", partition: Int32(i % 2), value: Array("\(i)".utf8)) { _ in } }
        try await producer2.flush()
        let deadline = ContinuousClock.now + .seconds(30)
        while got.count < 60 && ContinuousClock.now < deadline { got += try await consumer.poll().map { String(buffer: $0.value!) } }
        #expect(got.map { Int($0)! }.sorted() == Array(0..<60))
        #expect(retries.withLockedValue { $0 } > 0, "the outage was noticed and ridden out")
        await more.close()
        await connection.close()
    }
}

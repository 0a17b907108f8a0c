import Foundation
import NIOCore
import SpoolClient
import SpoolProtocol
import SpoolTestSupport
import Testing

/// Spool's own producer with a `transactionalId`, over the native protocol, against a real
/// `spool broker` process (whose transaction coordinator the Kafka listener shares).
@Suite struct TransactionalProducerTests {
    static func transactional(_ id: String) -> ProducerConfig {
        var c = ProducerConfig()
        c.transactionalId = id
        c.lingerMillis = 0
        c.deliveryTimeoutMillis = 20_000
        return c
    }

    /// Every value of `topic` a consumer reads from the beginning: polls until `expected`
    /// values came, then a few more rounds to see that nothing else does (bounded: 10 s).
    static func values(_ connection: SpoolConnection, _ topic: String, readCommitted: Bool, expected: Int) async throws -> [String] {
        var config = ConsumerConfig(group: nil)
        config.maxWaitMillis = 50
        config.enableAutoCommit = false
        config.readCommitted = readCommitted
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.assign(topic: topic, from: .beginning)
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(10)
        var extra = 0
        while Date() < deadline, extra < 5 {
            seen += try await consumer.poll().map { String(buffer: $0.value!) }
            if seen.count >= expected { extra += 1 }
        }
        return seen
    }

    @Test func committedRecordsReachReadCommittedConsumersAbortedOnesOnlyReadUncommitted() async throws {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        try await SpoolAdmin(connection).createTopic("tx", partitions: 2)
        let producer = SpoolProducer(connection: connection, config: Self.transactional("tx-1"))
        try await producer.initTransactions()

        try await producer.beginTransaction()
        _ = try await producer.send(topic: "tx", partition: 0, value: Array("a".utf8))
        _ = try await producer.send(topic: "tx", partition: 1, value: Array("b".utf8))
        try await producer.sendOffsetsToTransaction([("in", 0, 7)], group: "g-commit")
        try await producer.commitTransaction()

        try await producer.beginTransaction()
        _ = try await producer.send(topic: "tx", partition: 0, value: Array("x".utf8))
        try await producer.send(topic: "tx", partition: 1, value: Array("y".utf8)) { _ in }
        try await producer.sendOffsetsToTransaction([("in", 0, 9)], group: "g-abort")
        try await producer.abortTransaction()

        try await producer.beginTransaction()
        _ = try await producer.send(topic: "tx", partition: 0, value: Array("c".utf8))
        try await producer.commitTransaction()
        try await producer.close()

        let committed = try await Self.values(connection, "tx", readCommitted: true, expected: 3)
        #expect(committed.sorted() == ["a", "b", "c"], "\(committed)")
        let all = try await Self.values(connection, "tx", readCommitted: false, expected: 5)
        #expect(all.sorted() == ["a", "b", "c", "x", "y"], "\(all)")
        // The offsets of the committed transaction are stored; the aborted one's never.
        let stored = try await SpoolAdmin(connection).committedOffsets(group: "g-commit")
        #expect(stored.map(\.offset) == [7])
        #expect(try await SpoolAdmin(connection).committedOffsets(group: "g-abort").isEmpty)
        await connection.close()
        _ = broker
    }

    @Test func aSecondProducerWithTheSameIdFencesTheFirst() async throws {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        try await SpoolAdmin(connection).createTopic("fence", partitions: 1)
        let zombie = SpoolProducer(connection: connection, config: Self.transactional("fence-1"))
        try await zombie.beginTransaction()
        _ = try await zombie.send(topic: "fence", partition: 0, value: Array("zombie-1".utf8))

        // The new producer's initTransactions aborts the zombie's open transaction and bumps the epoch.
        let successor = SpoolProducer(connection: connection, config: Self.transactional("fence-1"))
        try await successor.initTransactions()

        await #expect(throws: ProducerError.self) {
            do {
                _ = try await zombie.send(topic: "fence", partition: 0, value: Array("zombie-2".utf8))
            } catch let e as ProducerError {
                #expect(e.code == .fenced, "\(e)")
                throw e
            }
        }
        do {
            try await zombie.commitTransaction()
            Issue.record("a fenced producer committed")
        } catch let e as ProducerError {
            #expect(e.code == .fenced, "\(e)")
        }

        try await successor.beginTransaction()
        _ = try await successor.send(topic: "fence", partition: 0, value: Array("successor".utf8))
        try await successor.commitTransaction()
        let committed = try await Self.values(connection, "fence", readCommitted: true, expected: 1)
        #expect(committed == ["successor"], "\(committed)")
        await connection.close()
        _ = broker
    }

    @Test func anEmptyTransactionCommitsAndSendsOutsideATransactionAreRefused() async throws {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        try await SpoolAdmin(connection).createTopic("empty", partitions: 1)
        let producer = SpoolProducer(connection: connection, config: Self.transactional("empty-1"))
        try await producer.beginTransaction()
        try await producer.commitTransaction()
        try await producer.beginTransaction()
        try await producer.abortTransaction()

        do {
            _ = try await producer.send(topic: "empty", value: Array("outside".utf8))
            Issue.record("a send outside a transaction was accepted")
        } catch let e as ProducerError {
            #expect(e.code == .transactionState, "\(e)")
        }
        try await producer.beginTransaction()
        _ = try await producer.send(topic: "empty", value: Array("inside".utf8))
        try await producer.commitTransaction()
        try await producer.close()
        let committed = try await Self.values(connection, "empty", readCommitted: true, expected: 1)
        #expect(committed == ["inside"], "\(committed)")
        await connection.close()
        _ = broker
    }
}

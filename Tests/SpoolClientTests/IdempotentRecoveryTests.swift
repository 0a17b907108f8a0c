import Foundation
import NIOCore
import SpoolClient
import SpoolProtocol
import SpoolRecords
import SpoolTestSupport
import Testing

/// The idempotent producer recovers from an unresolvable sequence error as Kafka's does
/// (KIP-360): the broker lost records it had acknowledged (acks=1 and a power loss cut the
/// log), so the producer's next batch leaves a gap; the broker refuses it (ABORTED, nothing
/// appended), and the producer bumps its epoch and sends it again from sequence 0, instead
/// of failing every later batch.
@Suite struct IdempotentRecoveryTests {
    /// Cuts the last batch off a segment file (as a power loss before its fsync would).
    static func cutLastBatch(_ path: String) throws -> Int {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var position = 0
        var last = 0
        var batches = 0
        while position + 12 <= bytes.count {
            let length = bytes[(position + 8)..<(position + 12)].reduce(0) { $0 << 8 | Int($1) }
            last = position
            position += 12 + length
            batches += 1
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(last))
        try handle.close()
        return batches
    }

    @Test func aSequenceGapAfterTheBrokerLostAcknowledgedRecordsIsResentUnderANewEpoch() async throws {
        let first = try BrokerProcess()
        let port = first.port
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        try await SpoolAdmin(connection).createTopic("gap", partitions: 1)
        var config = ProducerConfig()
        config.lingerMillis = 0
        config.acks = .leader
        config.deliveryTimeoutMillis = 60_000
        let producer = SpoolProducer(connection: connection, config: config)
        // Three batches of one record: sequences 0, 1, 2 at offsets 0, 1, 2.
        for i in 0..<3 {
            let at = try await producer.send(topic: "gap", partition: 0, value: Array("r\(i)".utf8))
            #expect(at.offset == Int64(i))
        }
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()
        #expect(try Self.cutLastBatch(first.directory + "/gap-0/00000000000000000000.log") == 3)
        let second = try BrokerProcess(arguments: ["broker", "--data-dir", first.directory, "--listen", "127.0.0.1:\(port)"])
        // The broker now expects sequence 2; the producer sends 3: a gap, refused. The
        // producer bumps its epoch and sends the batch again as epoch 1, sequence 0.
        let at = try await producer.send(topic: "gap", partition: 0, value: Array("r3".utf8))
        #expect(at.offset == 2)
        let after = try await producer.send(topic: "gap", partition: 0, value: Array("r4".utf8))
        #expect(after.offset == 3)
        try await producer.close()

        var fetch = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = "gap"
        p.offset = 0
        fetch.partitions = [p]
        let reply = try await connection.rawCall(.fetch, fetch)
        var reader = RecordBatchReader(reply.payload)
        var stored: [(epoch: Int16, sequence: Int32, value: String)] = []
        while let batch = try reader.next() {
            for record in try batch.records() {
                stored.append((batch.header.producerEpoch, batch.header.baseSequence, record.value.map { String(buffer: $0) } ?? ""))
            }
        }
        #expect(stored.map(\.value) == ["r0", "r1", "r3", "r4"], "r2 was lost with the cut; nothing is stored twice")
        #expect(stored.map(\.epoch) == [0, 0, 1, 1] && stored.map(\.sequence) == [0, 1, 0, 1], "\(stored)")
        withExtendedLifetime(first) {} // its data directory is the second broker's
        _ = second
    }
}

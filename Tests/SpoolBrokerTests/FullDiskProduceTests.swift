import Foundation
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

/// The produce path on a disk that fills up (ENOSPC injected under the broker core):
/// a batch whose write failed never advances the producer's sequence state, the appends
/// before it are acknowledged, and once space is back the retry goes through without a
/// restart.
@Suite struct FullDiskProduceTests {
    /// `batches` batches of `records` records of producer `pid` from `sequence` on, as one request.
    static func request(pid: Int64, epoch: Int16, sequence: Int32, batches: Int, records: Int) throws -> ByteBuffer {
        var out = ByteBuffer()
        for b in 0..<batches {
            let base = Int(sequence) + b * records
            var builder = RecordBatchBuilder(codec: .none, producerId: pid, producerEpoch: epoch, baseSequence: Int32(base))
            for r in 0..<records { builder.append(key: nil, value: Array("r\(base + r)".utf8), timestamp: PartitionLog.wallClockMillis()) }
            var batch = try builder.build()
            out.writeBuffer(&batch)
        }
        return out
    }

    @Test func aBatchThatDidNotFitLeavesTheSequenceStateAloneAndIsAppendedOnceSpaceIsBack() async throws {
        let directory = NSTemporaryDirectory() + "spool-full-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let io = FullDiskFileIO(matching: "/t-0/")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let broker = try Broker(config: BrokerConfig(dataDirectory: directory), io: io)
        _ = try await broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        let p = try await broker.initProducerId()
        let log = try broker.storage.partition(tp)
        let table = broker.producers.table(for: log)

        // Request A: 4 batches of 64 records (sequences 0...255); request B: sequences 256...319.
        let a = try Self.request(pid: p.producerId, epoch: p.producerEpoch, sequence: 0, batches: 4, records: 64)
        let b = try Self.request(pid: p.producerId, epoch: p.producerEpoch, sequence: 256, batches: 1, records: 64)
        // The disk has room for A and 100 bytes of B: both are sent at once with acks=all,
        // so B's write fails while A may still wait for its fsync.
        io.limitWrites(toBytes: a.readableBytes + 100)
        async let ra = broker.produce(tp, a, acks: .all, on: loop).get()
        async let rb = broker.produce(tp, b, acks: .all, on: loop).get()
        let (first, second) = try await (ra, rb)
        #expect(first.error == nil && first.baseOffset == 0 && first.lastOffset == 255, "\(String(describing: first.error))")
        #expect((second.error as? BrokerError)?.code == .partitionStopped, "\(String(describing: second.error))")
        #expect((second.error as? BrokerError)?.message.contains(String(cString: strerror(ENOSPC))) == true)
        #expect(io.refusedWrites == 1)
        #expect(table.lastSequence(of: p.producerId)! == (p.producerEpoch, 255), "the failed batch did not advance the sequence")
        #expect(log.endOffset == 256)

        // A's answer was lost: its third batch retried alone is a duplicate, even on the full disk.
        let third = try Self.request(pid: p.producerId, epoch: p.producerEpoch, sequence: 128, batches: 1, records: 64)
        let retried = try await broker.produce(tp, third, acks: .all, on: loop).get()
        #expect(retried.error == nil && retried.baseOffset == 128 && retried.lastOffset == 191)

        // Space is back: after the write-failure pause, B's retry (same sequence) is appended; no restart.
        io.limitWrites(toBytes: nil)
        try await Task.sleep(for: .milliseconds(PartitionLog.writeFailureRetryMillis + 100))
        let again = try await broker.produce(tp, b, acks: .all, on: loop).get()
        #expect(again.error == nil && again.baseOffset == 256 && again.lastOffset == 319, "\(String(describing: again.error))")
        #expect(table.lastSequence(of: p.producerId)! == (p.producerEpoch, 319))

        // Every acknowledged record reads back, once each, in order.
        var values: [String] = []
        var offset: Int64 = 0
        while offset < log.endOffset {
            var reader = RecordBatchReader(try log.readBytes(from: offset, maxBytes: 1 << 20))
            while let batch = try reader.next() {
                for record in try batch.records() { values.append(record.value.map { String(buffer: $0) } ?? "") }
                offset = batch.header.nextOffset
            }
        }
        #expect(values == (0..<320).map { "r\($0)" })
        try await broker.close()
        try await group.shutdownGracefully()
    }
}

import Foundation
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

/// The broker core's produce path, without any listener: the I/O pool, idempotent
/// producers, per-partition results.
@Suite struct BrokerProduceTests {
    static func batch(pid: Int64, epoch: Int16, sequence: Int32, values: [String]) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(codec: .lz4, producerId: pid, producerEpoch: epoch, baseSequence: sequence)
        for v in values { builder.append(key: nil, value: Array(v.utf8), timestamp: 1_700_000_000_000) }
        return try builder.build()
    }

    @Test func aRetriedIdempotentBatchIsAnsweredWithItsOriginalOffsetsAndStoredOnce() async throws {
        let directory = NSTemporaryDirectory() + "spool-core-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = try Broker(config: BrokerConfig(dataDirectory: directory))
        let loop = group.next()
        _ = try await broker.createTopic("t", partitions: 1)
        let producer = try await broker.initProducerId()
        let first = try Self.batch(pid: producer.producerId, epoch: producer.producerEpoch, sequence: 0, values: ["a", "b", "c"])
        let second = try Self.batch(pid: producer.producerId, epoch: producer.producerEpoch, sequence: 3, values: ["d"])
        let tp = TopicPartition("t", 0)

        let r1 = try await broker.produce(tp, first, acks: .leader, on: loop).get()
        let r2 = try await broker.produce(tp, second, acks: .leader, on: loop).get()
        // The client lost the answer to the first request and sends it again.
        let retry = try await broker.produce(tp, first, acks: .all, on: loop).get()
        #expect(r1.error == nil && r1.baseOffset == 0 && r1.lastOffset == 2)
        #expect(r2.error == nil && r2.baseOffset == 3)
        #expect(retry.error == nil && retry.baseOffset == 0 && retry.lastOffset == 2, "a duplicate gets the original offsets")
        #expect(try broker.offsets(tp).logEndOffset == 4, "the duplicate was not written again")

        // A gap in the sequence is refused with a typed error, and nothing is written.
        let gap = try Self.batch(pid: producer.producerId, epoch: producer.producerEpoch, sequence: 9, values: ["x"])
        let refused = try await broker.produce(tp, gap, acks: .leader, on: loop).get()
        #expect((refused.error as? ProducerStateError)?.code == .outOfOrderSequenceNumber)
        #expect(try broker.offsets(tp).logEndOffset == 4)

        try await broker.close()
        try await group.shutdownGracefully()
    }

    @Test func resultsArePerPartitionAndAFailureDoesNotFailTheOthers() async throws {
        let directory = NSTemporaryDirectory() + "spool-core-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = try Broker(config: BrokerConfig(dataDirectory: directory))
        _ = try await broker.createTopic("t", partitions: 2)
        let good = try Self.batch(pid: -1, epoch: -1, sequence: -1, values: ["ok"])
        var corrupt = good
        corrupt.setInteger(UInt8(0xFF), at: corrupt.readerIndex + corrupt.readableBytes - 1)
        let results = try await broker.produce(topic: "t", [(0, good), (1, corrupt), (7, good)], acks: .leader, on: group.next()).get()
        #expect(results.map { $0.topicPartition.partition } == [0, 1, 7])
        #expect(results[0].error == nil && results[0].baseOffset == 0)
        #expect((results[1].error as? RecordsError)?.code == .badCRC)
        #expect((results[2].error as? BrokerError)?.code == .unknownPartition)
        try await broker.close()
        try await group.shutdownGracefully()
    }
}

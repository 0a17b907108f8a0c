import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

@Suite struct RecordAccumulatorTests {
    /// Loose records added one after another get increasing offsets in their partition,
    /// even when each is added from a different event loop and their batches close (by
    /// size and by linger) on different loops.
    @Test func looseRecordsKeepTheirOrderAcrossEventLoops() async throws {
        let directory = NSTemporaryDirectory() + "spool-accumulator-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = BrokerConfig(dataDirectory: directory)
        config.accumulatorBatchBytes = 512 // many small batches
        let broker = try Broker(config: config)
        try await _ = broker.createTopic("t", partitions: 2)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let count = 3000
        let offsets = NIOLockedValueBox<[Int: Int64]>([:])
        let done = NIOLockedValueBox(0)
        for i in 0..<count {
            let tp = TopicPartition("t", Int32(i % 2))
            broker.produceRecord(tp, codec: .lz4, lingerMillis: Int64(i % 3), key: nil, value: Array("\(i)".utf8), headers: [],
                                 timestamp: PartitionLog.wallClockMillis(), eventLoop: group.next()) { result in
                if case .success(let offset) = result { offsets.withLockedValue { $0[i] = offset } }
                done.withLockedValue { $0 += 1 }
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while done.withLockedValue({ $0 }) < count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let all = offsets.withLockedValue { $0 }
        #expect(all.count == count)
        for p in 0..<2 {
            let inOrder = stride(from: p, to: count, by: 2).compactMap { all[$0] }
            #expect(inOrder == Array(0..<Int64(inOrder.count)), "partition \(p): offsets follow the order records were added")
        }
        try await broker.close()
        try await group.shutdownGracefully()
    }
}

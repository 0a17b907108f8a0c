import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

@Suite struct PartitionExecutorTests {
    /// Work for one partition runs in submission order even with several threads, while
    /// partitions interleave freely.
    @Test func workForOnePartitionRunsInSubmissionOrder() async throws {
        let executor = PartitionExecutor(threads: 4)
        let seen = NIOLockedValueBox<[TopicPartition: [Int]]>([:])
        let partitions = (0..<4).map { TopicPartition("t", Int32($0)) }
        let itemsPerPartition = 2_000
        for i in 0..<itemsPerPartition {
            for tp in partitions {
                executor.submit(tp) { seen.withLockedValue { $0[tp, default: []].append(i) } }
            }
        }
        try await executor.shutdown()
        for tp in partitions {
            #expect(seen.withLockedValue { $0[tp] } == Array(0..<itemsPerPartition))
        }
    }

    /// The futures of partition work complete on the caller's event loop.
    @Test func runCompletesOnTheCallersEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = PartitionExecutor(threads: 2)
        let loop = group.next()
        let onLoop = try await executor.run(TopicPartition("t", 0), on: loop) { 42 }
            .map { value in (value, loop.inEventLoop) }.get()
        #expect(onLoop.0 == 42 && onLoop.1)
        try await executor.shutdown()
        try await group.shutdownGracefully()
    }
}

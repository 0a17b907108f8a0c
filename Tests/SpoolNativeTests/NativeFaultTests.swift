import Foundation
import NIOCore
import NIOEmbedded
@testable import SpoolNative
import SpoolBroker
import SpoolProtocol
import SpoolRecords
import SpoolStorage
import SwiftProtobuf
import Testing

/// Storage faults as a client sees them through the native listener.
@Suite struct NativeFaultTests {
    func produceAll(_ h: HandlerHarness, stream: UInt32) async throws -> Spool_V1_ProducePartitionResult {
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(key: nil, value: [1, 2, 3], timestamp: PartitionLog.wallClockMillis())
        let batch = try builder.build()
        var produce = Spool_V1_ProduceRequest()
        produce.topic = "t"
        produce.acks = .all
        var p = Spool_V1_ProducePartition()
        p.bytes = UInt32(batch.readableBytes)
        produce.partitions = [p]
        try await h.send(method: .produce, stream: stream, produce, payload: batch)
        return try #require(try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: try await h.reply(stream).message).results.first)
    }

    /// A failed fsync stops the partition (its data state is unknown); RecoverTopic brings
    /// it back without a restart, and appends work again.
    @Test func recoverTopicBringsAStoppedPartitionBack() async throws {
        let io = FaultyFileIO()
        let h = try await HandlerHarness(io: io)
        try await h.createTopic("t")
        io.faults.withLockedValue { $0.fsync = true }
        let failed = try await produceAll(h, stream: 2)
        #expect(failed.code == .unavailable, "\(failed.message)")
        var describe = Spool_V1_DescribeTopicRequest()
        describe.name = "t"
        try await h.send(method: .describeTopic, stream: 3, describe)
        let described = try ProtoCodec.decode(Spool_V1_DescribeTopicResponse.self, from: try await h.reply(3).message)
        #expect(described.topic.partitions.first?.stopped == true && described.topic.partitions.first?.failure.contains("fsync") == true)
        io.faults.withLockedValue { $0.fsync = false }
        var recover = Spool_V1_RecoverTopicRequest()
        recover.name = "t"
        try await h.send(method: .recoverTopic, stream: 4, recover)
        let recovered = try ProtoCodec.decode(Spool_V1_RecoverTopicResponse.self, from: try await h.reply(4).message)
        #expect(recovered.recovered == [0])
        #expect(recovered.topic.partitions.first?.stopped == false)
        let ok = try await produceAll(h, stream: 5)
        #expect(ok.code == .ok, "\(ok.message)")
    }

    /// Out of descriptors: the one fetch fails with RESOURCE_EXHAUSTED; the partition and
    /// the connection go on.
    @Test func aDescriptorShortageFailsTheFetchWithResourceExhausted() async throws {
        let io = FaultyFileIO()
        let h = try await HandlerHarness(io: io)
        try await h.createTopic("t")
        #expect(try await produceAll(h, stream: 2).code == .ok)
        io.faults.withLockedValue { $0.duplicate = true }
        var fetch = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = "t"
        fetch.partitions = [p]
        try await h.send(method: .fetch, stream: 3, fetch)
        let refused = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: try await h.reply(3).message)
        #expect(refused.partitions.first?.code == .resourceExhausted, "\(refused.partitions.first?.message ?? "")")
        io.faults.withLockedValue { $0.duplicate = false }
        try await h.send(method: .fetch, stream: 4, fetch)
        let served = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: try await h.reply(4).message)
        #expect(served.partitions.first?.code == .ok && served.partitions.first?.bytes ?? 0 > 0)
        #expect(h.budget.spanDescriptors <= 1)
    }

    /// A Subscribe that cannot open its segment retries after pauses that grow, and ends
    /// with the error after `subscribeOpenRetriesMax` failures (it used to retry in a busy
    /// loop, forever). With descriptors back within the retries, it delivers.
    @Test func aSubscribeThatCannotOpenItsSegmentBacksOff() async throws {
        let io = FaultyFileIO()
        let h = try await HandlerHarness(io: io)
        try await h.createTopic("t")
        #expect(try await produceAll(h, stream: 2).code == .ok)
        io.faults.withLockedValue { $0.duplicate = true }
        try await h.subscribe("t", stream: 3, credit: 1 << 20)
        // One attempt, then a pause: nothing more until the clock moves.
        #expect(await h.waitFor { io.faults.withLockedValue { $0.duplicateAttempts } == 1 })
        _ = try await h.sync(stream: 4)
        #expect(io.faults.withLockedValue { $0.duplicateAttempts } == 1)
        var frames: [Frame] = []
        for _ in 0..<20 where !frames.contains(where: { $0.streamID == 3 }) {
            await h.channel.testingEventLoop.advanceTime(by: .seconds(1))
            frames += try await h.sync(stream: 5)
        }
        let status = try #require(frames.first { $0.streamID == 3 })
        #expect(status.type == .status)
        #expect(try h.status(status).code == .resourceExhausted)
        #expect(io.faults.withLockedValue { $0.duplicateAttempts } == 1 + ConnectionHandler.subscribeOpenRetriesMax)
        // Descriptors back before the retries run out: the events flow.
        io.faults.withLockedValue { $0 = FaultyFileIO.Faults(duplicate: true) }
        try await h.subscribe("t", stream: 7, credit: 1 << 20)
        #expect(await h.waitFor { io.faults.withLockedValue { $0.duplicateAttempts } == 1 })
        io.faults.withLockedValue { $0.duplicate = false }
        await h.channel.testingEventLoop.advanceTime(by: .seconds(1))
        let events = try await h.sync(stream: 8)
        #expect(events.map(\.streamID) == [7] && events.first?.type == .response)
    }
}

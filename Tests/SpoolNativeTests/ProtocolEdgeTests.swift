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

extension HandlerHarness {
    /// Appends one uncompressed batch of `records` values of `valueBytes` to `tp` through the
    /// broker core (so waiters are woken), and waits for the append.
    func append(_ tp: TopicPartition, records: Int = 1, valueBytes: Int = 10) async throws {
        var builder = RecordBatchBuilder(codec: .none)
        for _ in 0..<records { builder.append(key: nil, value: [UInt8](repeating: 1, count: valueBytes), timestamp: PartitionLog.wallClockMillis()) }
        let result = try await broker.produce(tp, try builder.build(), acks: .leader, on: channel.eventLoop).get()
        if let error = result.error { throw error }
    }

    /// A ListTopics round trip on `stream`: every frame the handler wrote before it is in.
    func sync(stream: UInt32) async throws -> [Frame] {
        try await send(method: .listTopics, stream: stream, Spool_V1_ListTopicsRequest())
        var frames: [Frame] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while !frames.contains(where: { $0.streamID == stream }) && ContinuousClock.now < deadline {
            frames += try await outbound(1)
        }
        return frames.filter { $0.streamID != stream }
    }

    func waitFor(_ condition: () throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return try condition()
    }

    func subscribe(_ topic: String, stream: UInt32, credit: UInt32, offset: Int64 = 0) async throws {
        var request = Spool_V1_SubscribeRequest()
        request.topic = topic
        request.offset = offset
        request.initialCreditBytes = credit
        try await send(method: .subscribe, stream: stream, request)
    }
}

@Suite struct ProtocolEdgeTests {
    @Test func cancelEndsALongPollAndTheStreamIDCanBeReused() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.send(method: .fetch, stream: 5, HandlerHarness.longPoll("t"))
        #expect(await h.waitFor { h.broker.waitingForAppends == 1 })
        try await h.send(.cancel, stream: 5, Spool_V1_Credit())
        let cancelled = try await h.outbound(1)
        #expect(cancelled.map(\.type) == [.status] && cancelled[0].streamID == 5)
        #expect(try h.status(cancelled[0]).code == .cancelled)
        #expect(h.broker.waitingForAppends == 0)
        // The id is free again; a late append answers nothing on it.
        try await h.append(TopicPartition("t", 0))
        let frames = try await h.sync(stream: 5)
        #expect(frames.isEmpty, "\(frames.map(\.type))")
    }

    @Test func closingTheConnectionCancelsItsWaiters() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.send(method: .fetch, stream: 2, HandlerHarness.longPoll("t"))
        try await h.subscribe("t", stream: 3, credit: 1 << 20)
        #expect(await h.waitFor { h.broker.waitingForAppends == 2 })
        try await h.channel.close()
        #expect(await h.waitFor { h.broker.waitingForAppends == 0 })
    }

    @Test func subscribeSendsWithinItsCreditAndPushesNewAppends() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        let tp = TopicPartition("t", 0)
        for _ in 0..<3 { try await h.append(tp, records: 5, valueBytes: 100) }
        let batchBytes = try h.broker.reader(tp).read(from: 0, maxBytes: 1).spanBytes
        // Credit for exactly one batch: one event, then nothing until more credit.
        try await h.subscribe("t", stream: 7, credit: UInt32(batchBytes))
        var events = try await h.sync(stream: 8)
        #expect(events.map(\.type) == [.response] && events.allSatisfy { $0.streamID == 7 && !$0.endStream })
        #expect(events.first.map { $0.payload.readableBytes } == batchBytes)
        #expect(h.broker.waitingForAppends == 0, "a subscription out of credit waits for credit, not for appends")
        // Credit for the other two.
        var credit = Spool_V1_Credit()
        credit.bytes = UInt32(2 * batchBytes)
        try await h.send(.credit, stream: 7, credit)
        events = try await h.sync(stream: 9)
        #expect(events.reduce(0) { $0 + $1.payload.readableBytes } == 2 * batchBytes)
        let first = try ProtoCodec.decode(Spool_V1_SubscribeEvent.self, from: events[0].message)
        #expect(first.highWatermark == 15)
        // Caught up with credit left: waits for the next append, which is pushed.
        credit.bytes = 1 << 20
        try await h.send(.credit, stream: 7, credit)
        #expect(await h.waitFor { h.broker.waitingForAppends == 1 })
        try await h.append(tp)
        let pushed = try await h.outbound(1)
        #expect(pushed.map(\.streamID) == [7])
        // CANCEL ends it with CANCELLED and leaves no waiter.
        #expect(await h.waitFor { h.broker.waitingForAppends == 1 })
        try await h.send(.cancel, stream: 7, Spool_V1_Credit())
        let end = try await h.outbound(1)
        #expect(end.map(\.type) == [.status] && end[0].endStream)
        #expect(try h.status(end[0]).code == .cancelled)
        #expect(h.broker.waitingForAppends == 0)
    }

    @Test func aMalformedCreditEndsTheSubscriptionForReal() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.subscribe("t", stream: 3, credit: 1 << 20)
        #expect(await h.waitFor { h.broker.waitingForAppends == 1 })
        var buffer = ByteBuffer()
        Frame(type: .credit, streamID: 3, message: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])).encode(into: &buffer)
        try await h.channel.writeInbound(buffer)
        let status = try await h.outbound(1)
        #expect(status.map(\.type) == [.status] && status[0].streamID == 3)
        #expect(try h.status(status[0]).code == .invalidArgument)
        // No longer waiting, and an append sends nothing on the ended stream.
        #expect(h.broker.waitingForAppends == 0)
        try await h.append(TopicPartition("t", 0))
        let after = try await h.sync(stream: 4)
        #expect(after.isEmpty, "\(after.map(\.type))")
    }

    @Test func idleTimeoutSaysGoAwayOnlyWithNoCallOpen() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.send(method: .fetch, stream: 2, HandlerHarness.longPoll("t"))
        h.channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        let frames = try await h.sync(stream: 3)
        #expect(frames.isEmpty && h.channel.isActive, "a long poll in flight keeps the connection")
        try await h.send(.cancel, stream: 2, Spool_V1_Credit())
        _ = try await h.outbound(1)
        h.channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        let goAway = try await h.outbound(1)
        #expect(goAway.map(\.type) == [.goAway])
        #expect(try h.status(goAway[0]).code == .unavailable)
        try await h.channel.closeFuture.get()
    }

    @Test func drainAnswersLongPollsEndsStreamsThenSaysGoAway() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.send(method: .fetch, stream: 2, HandlerHarness.longPoll("t"))
        try await h.subscribe("t", stream: 3, credit: 1 << 20)
        #expect(await h.waitFor { h.broker.waitingForAppends == 2 })
        h.channel.pipeline.fireUserInboundEventTriggered(ConnectionHandler.DrainEvent())
        var frames: [Frame] = []
        while frames.count < 3 { frames += try await h.outbound(3 - frames.count) }
        #expect(frames.last?.type == .goAway)
        #expect(Set(frames.dropLast().map { "\($0.streamID):\($0.type)" }) == ["2:response", "3:status"])
        #expect(try h.status(frames.first { $0.streamID == 3 }!).code == .unavailable)
        try await h.channel.closeFuture.get()
        #expect(h.broker.waitingForAppends == 0)
    }

    @Test func fetchResponsesFitInMaxFrameBytesPayloadIncluded() async throws {
        let h = try await HandlerHarness { $0.maxFrameBytes = 1 << 20 }
        try await h.createTopic("t", partitions: 3)
        for p in Int32(0)..<3 { try await h.append(TopicPartition("t", p), records: 1, valueBytes: 400 << 10) }
        var fetch = Spool_V1_FetchRequest()
        fetch.partitions = (Int32(0)..<3).map { p in
            var fp = Spool_V1_FetchPartition()
            fp.topic = "t"
            fp.partition = p
            return fp
        }
        try await h.send(method: .fetch, stream: 2, fetch)
        let frames = try await h.outbound(1)
        let frameBytes = Frame.headerBytes + frames[0].message.readableBytes + frames[0].payload.readableBytes
        #expect(frameBytes <= 1 << 20, "a \(frameBytes)-byte response on a connection limited to \(1 << 20)")
        let response = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: frames[0].message)
        #expect(response.partitions.filter { $0.bytes > 0 }.count == 2)
    }

    @Test func produceRecordsAcceptsAllOrNothingAndCapsItsSize() async throws {
        // linger.ms=0: the testing event loop runs no timers unless told to.
        let h = try await HandlerHarness {
            $0.maxRecordsPerRequest = 10
            $0.storage.topicDefaults.lingerMillis = 0
        }
        try await h.createTopic("t")
        var request = Spool_V1_ProduceRecordsRequest()
        request.topic = "t"
        request.records = [Int32(0), 99].map { p in
            var r = Spool_V1_LooseRecord()
            r.partition = p
            r.value = Data("v".utf8)
            return r
        }
        try await h.send(method: .produceRecords, stream: 2, request)
        let refused = try await h.outbound(1)
        #expect(try h.status(refused[0]).code == .notFound)
        // Nothing of it went in: the next record gets offset 0.
        request.records = [request.records[0]]
        try await h.send(method: .produceRecords, stream: 3, request)
        let accepted = try await h.outbound(1)
        let results = try ProtoCodec.decode(Spool_V1_ProduceRecordsResponse.self, from: accepted[0].message).results
        #expect(results.map(\.offset) == [0])
        request.records = Array(repeating: request.records[0], count: 11)
        try await h.send(method: .produceRecords, stream: 4, request)
        let tooMany = try await h.outbound(1)
        #expect(try h.status(tooMany[0]).code == .invalidArgument)
    }

    @Test func acksNoneIsAnsweredAtOnceAndStillAppended() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        var builder = RecordBatchBuilder(codec: .lz4)
        for i in 0..<10 { builder.append(key: nil, value: Array("\(i)".utf8), timestamp: PartitionLog.wallClockMillis()) }
        let batch = try builder.build()
        var produce = Spool_V1_ProduceRequest()
        produce.topic = "t"
        produce.acks = .none
        var p = Spool_V1_ProducePartition()
        p.bytes = UInt32(batch.readableBytes)
        produce.partitions = [p]
        try await h.send(method: .produce, stream: 2, produce, payload: batch)
        let frames = try await h.outbound(1)
        let result = try #require(try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: frames[0].message).results.first)
        #expect(result.code == .ok && result.baseOffset == -1)
        #expect(await h.waitFor { (try? h.broker.offsets(.init("t", 0)).logEndOffset) == 10 })
    }
}

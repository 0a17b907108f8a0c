import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
@testable import SpoolNative
import SpoolBroker
import SpoolStorage
import SpoolProtocol
import SpoolRecords
import SwiftProtobuf
import Testing

/// The connection handler on a NIOAsyncTestingChannel (thread-safe, because the broker
/// core completes calls from its I/O pool): frames in, frames out, no sockets.
final class HandlerHarness: @unchecked Sendable {
    let directory = NSTemporaryDirectory() + "spool-handler-" + UUID().uuidString
    let broker: Broker
    let channel: NIOAsyncTestingChannel
    /// (file position, length) of every FileRegion written, in order.
    var fileRegions: [(Int, Int)] = []
    private var pending = ByteBuffer()

    let budget: ConnectionBudget

    init(maxInFlight: Int = 1024, io: FileIO = PosixFileIO(), configure: (inout BrokerConfig) -> Void = { _ in }) async throws {
        var config = BrokerConfig(dataDirectory: directory)
        config.maxInFlightPerConnection = maxInFlight
        configure(&config)
        let broker = try Broker(config: config, io: io)
        self.broker = broker
        let budget = broker.budgets.admitConnection()!
        self.budget = budget
        channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(BudgetedFrameDecoder(maxFrameBytes: 1 << 20, budget: budget)))
            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(broker: broker, budget: budget))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
    }

    func send(_ type: FrameType = .request, method: SpoolMethod? = nil, rawMethod: UInt16? = nil, stream: UInt32, _ message: some SwiftProtobuf.Message, payload: ByteBuffer = ByteBuffer()) async throws {
        let bytes: [UInt8] = try message.serializedBytes()
        let frame = Frame(type: type, method: rawMethod ?? method?.rawValue ?? 0, streamID: stream, message: ByteBuffer(bytes: bytes), payload: payload)
        var buffer = ByteBuffer()
        frame.encode(into: &buffer)
        try await channel.writeInbound(buffer)
    }

    /// The frames the handler wrote, decoded; waits (up to 60 s: the whole suite may run
    /// on two busy cores) until at least `count` arrived.
    func outbound(_ count: Int = 1) async throws -> [Frame] {
        var frames: [Frame] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            while let data = try await channel.readOutbound(as: IOData.self) {
                switch data {
                case .byteBuffer(var b): pending.writeBuffer(&b)
                case .fileRegion(let region):
                    // The handler closes its duplicated descriptor once the write completes:
                    // keep the size here, compare contents via storage.
                    fileRegions.append((region.readerIndex, region.readableBytes))
                    pending.writeBytes([UInt8](repeating: 0, count: region.readableBytes))
                }
            }
            while let frame = try FrameDecoder.decodeFrame(from: &pending, maxFrameBytes: 1 << 24) { frames.append(frame) }
            if frames.count >= count || ContinuousClock.now > deadline { return frames }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Creates a topic through the handler and discards the answer.
    func createTopic(_ name: String, partitions: Int32 = 1, stream: UInt32 = 1) async throws {
        var create = Spool_V1_CreateTopicRequest()
        create.name = name
        create.partitions = partitions
        try await send(method: .createTopic, stream: stream, create)
        let frames = try await outbound()
        #expect(frames.map(\.streamID) == [stream], "createTopic answered \(frames.map(\.streamID))")
    }

    /// Waits (up to 60 s) for the next frame on `stream`; frames of other streams read
    /// meanwhile are dropped.
    func reply(_ stream: UInt32) async throws -> Frame {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let frame = try await outbound(1).first(where: { $0.streamID == stream }) { return frame }
        }
        throw SpoolStatusError(.deadlineExceeded, "no frame on stream \(stream) within 60 s")
    }

    /// A fetch of partition 0 of `topic` that long-polls for 10 s (it stays in flight).
    static func longPoll(_ topic: String) -> Spool_V1_FetchRequest {
        var fetch = Spool_V1_FetchRequest()
        var p = Spool_V1_FetchPartition()
        p.topic = topic
        fetch.partitions = [p]
        fetch.maxWaitMs = 10_000
        return fetch
    }

    func status(_ frame: Frame) throws -> Spool_V1_Status {
        try ProtoCodec.decode(Spool_V1_Status.self, from: frame.message)
    }

    deinit {
        try? broker.closeBlocking()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite struct ConnectionHandlerTests {
    @Test func handshakeAgreesOnVersionOne() async throws {
        let h = try await HandlerHarness()
        var hello = Spool_V1_HandshakeRequest()
        hello.minVersion = 1
        hello.maxVersion = 3
        try await h.send(method: .handshake, stream: 1, hello)
        let frames = try await h.outbound()
        #expect(frames.count == 1 && frames[0].type == .response && frames[0].endStream && frames[0].streamID == 1)
        let response = try ProtoCodec.decode(Spool_V1_HandshakeResponse.self, from: frames[0].message)
        #expect(response.version == 1 && response.maxFrameBytes > 0)
    }

    @Test func versionsThatDoNotMeetAreRefused() async throws {
        let h = try await HandlerHarness()
        var hello = Spool_V1_HandshakeRequest()
        hello.minVersion = 2
        hello.maxVersion = 5
        try await h.send(method: .handshake, stream: 1, hello)
        let frames = try await h.outbound()
        #expect(frames.first?.type == .status)
        #expect(try h.status(frames[0]).code == .failedPrecondition)
    }

    @Test func unknownMethodIsUnimplementedAndTheConnectionLivesOn() async throws {
        let h = try await HandlerHarness()
        try await h.send(rawMethod: 999, stream: 1, Spool_V1_ListTopicsRequest())
        try await h.send(method: .listTopics, stream: 2, Spool_V1_ListTopicsRequest())
        let frames = try await h.outbound(2)
        #expect(frames.map(\.type) == [.status, .response])
        #expect(try h.status(frames[0]).code == .unimplemented)
        #expect(h.channel.isActive)
    }

    @Test func malformedMessageIsInvalidArgument() async throws {
        let h = try await HandlerHarness()
        var buffer = ByteBuffer()
        Frame(type: .request, method: SpoolMethod.createTopic.rawValue, streamID: 4, message: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])).encode(into: &buffer)
        try await h.channel.writeInbound(buffer)
        let frames = try await h.outbound()
        #expect(frames.first?.type == .status)
        #expect(try h.status(frames[0]).code == .invalidArgument)
    }

    @Test func tooManyCallsInFlightAreRefused() async throws {
        let h = try await HandlerHarness(maxInFlight: 2)
        try await h.createTopic("t")
        // Two long-polling fetches hold the two slots; the third call is refused.
        let fetch = HandlerHarness.longPoll("t")
        try await h.send(method: .fetch, stream: 2, fetch)
        try await h.send(method: .fetch, stream: 3, fetch)
        try await h.send(method: .listTopics, stream: 4, Spool_V1_ListTopicsRequest())
        let frames = try await h.outbound()
        #expect(frames.count == 1 && frames[0].streamID == 4)
        #expect(try h.status(frames[0]).code == .resourceExhausted)
    }

    @Test func aReusedStreamIDIsAProtocolError() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        try await h.send(method: .fetch, stream: 7, HandlerHarness.longPoll("t"))
        try await h.send(method: .listTopics, stream: 7, Spool_V1_ListTopicsRequest())
        let frames = try await h.outbound()
        #expect(frames.last?.type == .goAway)
        try await h.channel.closeFuture.get()
    }

    @Test func aClientMayNotSendResponses() async throws {
        let h = try await HandlerHarness()
        try await h.send(.response, stream: 1, Spool_V1_ListTopicsResponse())
        let frames = try await h.outbound()
        #expect(frames.map(\.type) == [.goAway])
        try await h.channel.closeFuture.get()
        #expect(!h.channel.isActive)
    }

    @Test func aMalformedFrameGetsGoAwayAndClose() async throws {
        let h = try await HandlerHarness()
        try? await h.channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 3, 1, 0, 0, 0]))
        let frames = try await h.outbound()
        #expect(frames.map(\.type) == [.goAway])
        #expect(try h.status(frames[0]).code == .invalidArgument)
        #expect(try h.status(frames[0]).message.contains("shorter"))
        // ...and the connection is closed after it.
        let deadline = ContinuousClock.now + .seconds(60)
        while h.channel.isActive && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        #expect(!h.channel.isActive)
    }

    @Test func produceThenFetchSendsTheStoredBytes() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t", partitions: 2, stream: 1)
        var builder = RecordBatchBuilder(codec: .lz4)
        for i in 0..<10 { builder.append(key: nil, value: Array("v\(i)".utf8), timestamp: 1) }
        let batch = try builder.build()
        var produce = Spool_V1_ProduceRequest()
        produce.topic = "t"
        var p = Spool_V1_ProducePartition()
        p.partition = 1
        p.bytes = UInt32(batch.readableBytes)
        produce.partitions = [p]
        try await h.send(method: .produce, stream: 2, produce, payload: batch)
        let producedFrames = try await h.outbound(1)
        #expect(producedFrames.map(\.streamID) == [2])
        let produced = try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: producedFrames[0].message)
        #expect(produced.results.first?.baseOffset == 0 && produced.results.first?.lastOffset == 9)
        var fetch = Spool_V1_FetchRequest()
        var fp = Spool_V1_FetchPartition()
        fp.topic = "t"
        fp.partition = 1
        fetch.partitions = [fp]
        try await h.send(method: .fetch, stream: 3, fetch)
        let frames = try await h.outbound(1)
        #expect(frames.map(\.streamID) == [3])
        let fetched = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: frames[0].message)
        #expect(fetched.partitions.first?.bytes == UInt32(batch.readableBytes))
        #expect(fetched.partitions.first?.highWatermark == 10)
        // Sent as a file region (sendfile on a socket) covering exactly the stored batch,
        // which holds the very bytes the producer sent (its base offset was already 0).
        #expect(h.fileRegions.count == 1 && h.fileRegions[0].0 == 0 && h.fileRegions[0].1 == batch.readableBytes)
        let stored = try h.broker.reader(.init("t", 1)).readBytes(from: 0, maxBytes: 1 << 20)
        #expect(stored == batch)
    }

    @Test func producePayloadMustMatchItsPartitions() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        var produce = Spool_V1_ProduceRequest()
        produce.topic = "t"
        var p = Spool_V1_ProducePartition()
        p.bytes = 100
        produce.partitions = [p]
        try await h.send(method: .produce, stream: 2, produce, payload: ByteBuffer(bytes: [1, 2, 3]))
        let frames = try await h.outbound()
        #expect(try h.status(frames[0]).code == .invalidArgument)
    }

    /// Produces `payload` to partition 0 of `topic` on `stream`; returns the partition's result.
    func produce(_ h: HandlerHarness, topic: String, _ payload: ByteBuffer, stream: UInt32) async throws -> Spool_V1_ProducePartitionResult {
        var produce = Spool_V1_ProduceRequest()
        produce.topic = topic
        var p = Spool_V1_ProducePartition()
        p.bytes = UInt32(payload.readableBytes)
        produce.partitions = [p]
        try await h.send(method: .produce, stream: stream, produce, payload: payload)
        let frame = try await h.reply(stream)
        return try #require(try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: frame.message).results.first)
    }

    /// Validated at the door: a batch whose CRC is right but whose records cannot be read
    /// is refused (DATA_LOSS for corrupt compressed data, INVALID_ARGUMENT for a malformed
    /// record or a timestamp out of bounds) and nothing of the request is stored.
    @Test func batchesWithUnreadableRecordsAreRefusedAtTheDoor() async throws {
        let h = try await HandlerHarness()
        try await h.createTopic("t")
        var builder = RecordBatchBuilder(codec: .lz4)
        for i in 0..<20 { builder.append(key: nil, value: Array("value \(i)".utf8), timestamp: PartitionLog.wallClockMillis()) }
        let good = try builder.build()
        // Corrupt lz4 with a correct CRC.
        var corrupt = good
        let recordsAt = RecordBatchHeader.size + 12
        for i in recordsAt..<corrupt.writerIndex { corrupt.setInteger(UInt8(truncatingIfNeeded: i &* 31), at: i) }
        RecordBatch.writeCRC(in: &corrupt, at: 0)
        let r1 = try await produce(h, topic: "t", corrupt, stream: 2)
        #expect(r1.code == .dataLoss, "\(r1.message)")
        // A good batch followed by one whose count lies: neither is stored.
        var plain = RecordBatchBuilder(codec: .none)
        plain.append(key: nil, value: [1, 2, 3], timestamp: PartitionLog.wallClockMillis())
        var lying = try plain.build()
        lying.setInteger(Int32(2), at: RecordBatchHeader.Position.recordCount)
        lying.setInteger(Int32(1), at: RecordBatchHeader.Position.lastOffsetDelta)
        RecordBatch.writeCRC(in: &lying, at: 0)
        var both = good
        both.writeImmutableBuffer(lying)
        let r2 = try await produce(h, topic: "t", both, stream: 3)
        #expect(r2.code == .invalidArgument, "\(r2.message)")
        #expect(try h.broker.offsets(.init("t", 0)).logEndOffset == 0)
        // The good batch alone goes in.
        let r3 = try await produce(h, topic: "t", good, stream: 4)
        #expect(r3.code == .ok && r3.lastOffset == 19)
    }

    @Test func timestampsOutsideTheTopicsBoundAreRefused() async throws {
        let h = try await HandlerHarness()
        var create = Spool_V1_CreateTopicRequest()
        create.name = "clocked"
        var entry = Spool_V1_ConfigEntry()
        entry.key = "message.timestamp.difference.max.ms"
        entry.value = "60000"
        create.configs = [entry]
        try await h.send(method: .createTopic, stream: 1, create)
        _ = try await h.reply(1)
        var old = RecordBatchBuilder(codec: .gzip)
        old.append(key: nil, value: [1], timestamp: PartitionLog.wallClockMillis() - 3_600_000)
        let r = try await produce(h, topic: "clocked", try old.build(), stream: 2)
        #expect(r.code == .invalidArgument && r.message.contains("message.timestamp.difference.max.ms"), "\(r.message)")
    }
}

import NIOCore
import SpoolTestSupport
import NIOEmbedded
import NIOTestUtils
import SpoolProtocol
import Testing

func frameBytes(_ frame: Frame) -> ByteBuffer {
    var buffer = ByteBuffer()
    frame.encode(into: &buffer)
    return buffer
}

func sampleFrames() -> [Frame] {
    [
        Frame(type: .request, method: SpoolMethod.produce.rawValue, streamID: 1, message: ByteBuffer(string: "msg"), payload: ByteBuffer(bytes: [1, 2, 3, 4, 5])),
        Frame(type: .response, flags: Frame.endStreamFlag, streamID: 1, message: ByteBuffer(string: "response")),
        Frame(type: .credit, streamID: 9, message: ByteBuffer()),
        Frame(type: .status, flags: Frame.endStreamFlag, streamID: 0xFFFF_FFFF, message: ByteBuffer(string: "s"), payload: ByteBuffer()),
        Frame(type: .request, method: 1, streamID: 2, message: ByteBuffer(), payload: ByteBuffer(repeating: 7, count: 3000)),
    ]
}

extension Frame: Equatable {
    public static func == (a: Frame, b: Frame) -> Bool {
        a.type == b.type && a.flags == b.flags && a.method == b.method && a.streamID == b.streamID
            && a.message == b.message && a.payload == b.payload
    }
}

@Suite struct FrameDecoderTests {
    @Test func verifierDripFeedAllAtOnceAndOneByOne() throws {
        let pairs = sampleFrames().map { (frameBytes($0), [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder(maxFrameBytes: 1 << 20) }
    }

    @Test func splitAtEveryByteBoundary() throws {
        var all = ByteBuffer()
        for frame in sampleFrames() { frame.encode(into: &all) }
        for split in 0...all.readableBytes {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)))
            try channel.writeInbound(all.getSlice(at: 0, length: split)!)
            try channel.writeInbound(all.getSlice(at: split, length: all.readableBytes - split)!)
            var got: [Frame] = []
            while let frame = try channel.readInbound(as: Frame.self) { got.append(frame) }
            #expect(got == sampleFrames(), "split at \(split)")
            _ = try channel.finish()
        }
    }

    @Test func manyFramesInOneRead() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)))
        var all = ByteBuffer()
        for i in 0..<500 {
            Frame(type: .request, method: 8, streamID: UInt32(i + 1), message: ByteBuffer(string: "m\(i)")).encode(into: &all)
        }
        try channel.writeInbound(all)
        var count = 0
        while let frame = try channel.readInbound(as: Frame.self) {
            count += 1
            #expect(frame.streamID == UInt32(count))
        }
        #expect(count == 500)
        _ = try channel.finish()
    }

    func expectFramingError(_ bytes: [UInt8], max: Int = 1 << 20, _ comment: Comment) {
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: FramingError.self, comment) { _ = try FrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: max) }
    }

    @Test func malformedFramesAreRejected() throws {
        expectFramingError([0, 0, 0, 5, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], "frame length shorter than the header")
        expectFramingError([0x7F, 0xFF, 0xFF, 0xFF], "oversized frame, refused from its length alone")
        expectFramingError([0, 0, 0, 12, 99], "unknown type, refused before the rest arrives")
        expectFramingError([0, 0, 0, 12, 1, 0x80], "unknown flag bits")
        expectFramingError([0, 0, 0, 14, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0x41, 0x42], "message longer than the frame")
        expectFramingError([0, 0, 0, 12, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], "stream id 0")
        expectFramingError([0, 0, 0, 12, 2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], "method on a response")
        var ok = ByteBuffer(bytes: [0, 0, 0, 12, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        #expect(try FrameDecoder.decodeFrame(from: &ok, maxFrameBytes: 64) != nil)
    }

    @Test func oversizedFrameIsRefusedWithoutBuffering() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        var header = ByteBuffer()
        Frame.writeHeader(type: .request, method: 6, streamID: 1, messageBytes: 0, payloadBytes: 10_000, to: &header)
        #expect(throws: FramingError.self) { try channel.writeInbound(header) }
        _ = try? channel.finish()
    }

    @Test func incompleteFramesWaitForMoreData() throws {
        let bytes = frameBytes(sampleFrames()[0])
        for cut in 0..<bytes.readableBytes {
            var partial = bytes.getSlice(at: 0, length: cut)!
            #expect(try FrameDecoder.decodeFrame(from: &partial, maxFrameBytes: 1 << 20) == nil)
            #expect(partial.readableBytes == cut, "nothing consumed")
        }
    }

    @Test func randomGarbageNeverCrashes() {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("randomGarbageNeverCrashes seed \(seed)")
        var rng = SeededRandom(seed: seed)
        for _ in 0..<5000 {
            var buffer = ByteBuffer(bytes: (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            while (try? FrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: 4096)).flatMap({ $0 }) != nil {}
        }
    }
}


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

    /// Frames built by a seeded generator, most of them valid and many with one field
    /// broken, decode exactly as FRAMING.md says (the model below): the same frames, the same
    /// bytes consumed, the same kind of error, nothing consumed for an incomplete frame. The
    /// inputs reach every check past the length field: the run fails unless each outcome
    /// (a frame, more data needed, too large, and each malformed field) comes up often.
    @Test func generatedFramesDecodeAsTheModelSays() {
        var rng = SeededRandom(test: "generatedFramesDecodeAsTheModelSays")
        let seed = rng.seed
        let maxFrameBytes = 4096
        var seen: [FrameModel.Outcome.Kind: Int] = [:]
        let cases = 5000
        for index in 0..<cases {
            var buffer = ByteBuffer(bytes: FrameModel.generate(&rng, maxFrameBytes: maxFrameBytes))
            // Decode frame after frame until the model says the input ends or is refused.
            decoding: for _ in 0..<8 {
                let remaining = Array(buffer.readableBytesView)
                let expected = FrameModel.outcome(of: remaining, maxFrameBytes: maxFrameBytes)
                seen[expected.kind, default: 0] += 1
                let before = buffer.readerIndex
                let got: Result<Frame?, FramingError>
                do { got = .success(try FrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes)) } catch let e as FramingError { got = .failure(e) } catch {
                    Issue.record("case \(index): untyped error \(error) (seed \(seed))")
                    break decoding
                }
                let consumed = buffer.readerIndex - before
                switch (expected, got) {
                case (.frame(let frame, let length), .success(let decoded?)):
                    #expect(decoded == frame && consumed == length, "case \(index): decoded \(decoded) (\(consumed) bytes), model \(frame) (\(length)) (seed \(seed))")
                    continue
                case (.needMoreData, .success(nil)):
                    #expect(consumed == 0, "case \(index): consumed \(consumed) bytes of an incomplete frame (seed \(seed))")
                case (.refused(let code, _), .failure(let error)):
                    #expect(error.code == code, "case \(index): \(error.code), model \(code) (seed \(seed))")
                default:
                    Issue.record("case \(index): decoder \(got), model \(expected) for \(remaining.prefix(24)) (seed \(seed))")
                }
                break decoding
            }
        }
        print("generatedFramesDecodeAsTheModelSays: \(seen.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        for kind in FrameModel.Outcome.Kind.allCases {
            #expect(seen[kind, default: 0] >= cases / 100, "outcome \(kind) came up \(seen[kind, default: 0]) times in \(cases) cases (seed \(seed))")
        }
    }
}

/// FRAMING.md as a plain function of the bytes, written apart from `FrameDecoder` so that
/// the fuzzer has something to compare it with, and the fuzzer's input generator.
enum FrameModel {
    enum Outcome: CustomStringConvertible {
        /// A whole frame of `length` bytes (header included).
        case frame(Frame, length: Int)
        case needMoreData
        case refused(FramingError.Code, Kind)

        /// What decided the outcome (for the fuzzer's coverage).
        enum Kind: Int, CaseIterable, CustomStringConvertible {
            case frame, needMoreData, tooLarge, lengthBelowHeader, unknownType, unknownFlags, messageOverBody, streamZero, methodNotRequest
            var description: String { ["frame", "need more data", "too large", "length below header", "unknown type", "unknown flags", "message over body", "stream 0", "method on non-request"][rawValue] }
        }

        var kind: Kind {
            switch self {
            case .frame: .frame
            case .needMoreData: .needMoreData
            case .refused(_, let kind): kind
            }
        }

        var description: String {
            switch self {
            case .frame(let f, let length): "frame \(f.type) stream \(f.streamID) (\(length) bytes)"
            case .needMoreData: "need more data"
            case .refused(let code, let kind): "\(code) (\(kind))"
            }
        }
    }

    static func be32(_ b: [UInt8], _ at: Int) -> UInt32 { b[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }

    /// What a decoder must do with `bytes` at the front of its buffer. Checks follow the
    /// order in which the bytes arrive: a field is judged as soon as it is there.
    static func outcome(of b: [UInt8], maxFrameBytes: Int) -> Outcome {
        guard b.count >= 4 else { return .needMoreData }
        let length = Int(be32(b, 0))
        guard length >= 12 else { return .refused(.malformed, .lengthBelowHeader) }
        guard length + 4 <= maxFrameBytes else { return .refused(.tooLarge, .tooLarge) }
        if b.count >= 5, !(1...6).contains(b[4]) { return .refused(.malformed, .unknownType) }
        if b.count >= 6, b[5] & ~1 != 0 { return .refused(.malformed, .unknownFlags) }
        guard b.count >= 4 + length else { return .needMoreData }
        let type = FrameType(rawValue: b[4])!
        let method = UInt16(b[6]) << 8 | UInt16(b[7])
        let stream = be32(b, 8)
        let messageLength = Int(be32(b, 12))
        guard messageLength <= length - 12 else { return .refused(.malformed, .messageOverBody) }
        guard type == .goAway || stream != 0 else { return .refused(.malformed, .streamZero) }
        guard type == .request || method == 0 else { return .refused(.malformed, .methodNotRequest) }
        let message = ByteBuffer(bytes: b[16..<16 + messageLength])
        let payload = ByteBuffer(bytes: b[(16 + messageLength)..<(4 + length)])
        return .frame(Frame(type: type, flags: b[5], method: method, streamID: stream, message: message, payload: payload), length: 4 + length)
    }

    /// One to three frames, valid as built; then, in most inputs, one of them has a field
    /// broken or the input is cut short.
    static func generate(_ rng: inout SeededRandom, maxFrameBytes: Int) -> [UInt8] {
        var frames: [[UInt8]] = []
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let type = FrameType(rawValue: UInt8.random(in: 1...6, using: &rng))!
            let method = type == .request ? UInt16.random(in: 0...UInt16.max, using: &rng) : 0
            let stream = type == .goAway && Bool.random(using: &rng) ? 0 : UInt32.random(in: 1...UInt32.max, using: &rng)
            let message = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let payload = (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let frame = Frame(type: type, flags: UInt8.random(in: 0...1, using: &rng), method: method, streamID: stream,
                              message: ByteBuffer(bytes: message), payload: ByteBuffer(bytes: payload))
            frames.append(Array(frameBytes(frame).readableBytesView))
        }
        let target = Int.random(in: 0..<frames.count, using: &rng)
        func setBE32(_ value: UInt32, at: Int) {
            for k in 0..<4 { frames[target][at + k] = UInt8(truncatingIfNeeded: value >> (24 - 8 * k)) }
        }
        switch Int.random(in: 0..<12, using: &rng) {
        case 0: setBE32(UInt32.random(in: 0..<12, using: &rng), at: 0)  // shorter than the header
        case 1: setBE32(UInt32.random(in: UInt32(maxFrameBytes - 3)...UInt32.max, using: &rng), at: 0)  // over the limit
        case 2: setBE32(UInt32.random(in: 12..<400, using: &rng), at: 0)  // any plausible length
        case 3: frames[target][4] = UInt8.random(in: 0...255, using: &rng)  // type
        case 4: frames[target][5] = UInt8.random(in: 0...255, using: &rng)  // flags
        case 5: frames[target][6] = UInt8.random(in: 1...255, using: &rng)  // a method, maybe on a non-request
        case 6: setBE32(0, at: 8)  // stream 0
        case 7: setBE32(UInt32.random(in: 0..<300, using: &rng), at: 12)  // message length
        case 8:  // one random byte anywhere
            let at = Int.random(in: 0..<frames[target].count, using: &rng)
            frames[target][at] = UInt8.random(in: 0...255, using: &rng)
        default: break  // valid as built
        }
        var bytes = frames.flatMap { $0 }
        if Int.random(in: 0..<4, using: &rng) == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
        return bytes
    }
}

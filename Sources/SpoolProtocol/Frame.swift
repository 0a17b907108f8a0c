import NIOCore

/// The kind of a frame (byte 4 of the header); see proto/FRAMING.md.
public enum FrameType: UInt8, Sendable {
    case request = 1
    case response = 2
    case status = 3
    case credit = 4
    case cancel = 5
    case goAway = 6
}

/// Methods and their ids (the header's `method` field of a REQUEST).
public enum SpoolMethod: UInt16, Sendable, CaseIterable {
    case handshake = 1
    case createTopic = 2
    case deleteTopic = 3
    case listTopics = 4
    case describeTopic = 5
    case produce = 6
    case produceRecords = 7
    case fetch = 8
    case subscribe = 9
    case listOffsets = 10
    case commitOffsets = 11
    case fetchOffsets = 12
    case alterTopicConfig = 13
    case listGroups = 14
    case joinGroup = 15
    case syncGroup = 16
    case heartbeat = 17
    case leaveGroup = 18
    case describeGroups = 19
    case initProducerId = 20
    case recoverTopic = 21
    case createPartitions = 22
    case addPartitionsToTxn = 23
    case sendOffsetsToTxn = 24
    case endTxn = 25
    /// Live brokers and each partition's leader (proto/spool.proto, FRAMING.md "Metadata").
    case metadata = 26
    /// Which broker coordinates a consumer group (proto/spool.proto, FRAMING.md "Finding a group's coordinator").
    case findCoordinator = 27
    /// SCRAM steps (proto/spool.proto, FRAMING.md "Authentication"); ids 28-39 are left to other calls.
    case authenticate = 40
}

/// One decoded frame: header fields, the protobuf message bytes and the raw payload.
/// Message and payload are slices of the received buffer (no copy).
public struct Frame: Sendable {
    /// Size of the fixed header.
    public static let headerBytes = 16
    /// `frame_length` counts everything after itself: the 12 remaining header bytes and the body.
    public static let lengthCoveredHeaderBytes = 12
    public static let endStreamFlag: UInt8 = 0x01
    public static let knownFlags: UInt8 = endStreamFlag

    public var type: FrameType
    public var flags: UInt8
    public var method: UInt16
    public var streamID: UInt32
    public var message: ByteBuffer
    public var payload: ByteBuffer

    public init(type: FrameType, flags: UInt8 = 0, method: UInt16 = 0, streamID: UInt32, message: ByteBuffer, payload: ByteBuffer = ByteBuffer()) {
        self.type = type
        self.flags = flags
        self.method = method
        self.streamID = streamID
        self.message = message
        self.payload = payload
    }

    public var endStream: Bool { flags & Self.endStreamFlag != 0 }

    /// Writes the 16-byte header for a frame with these sizes. The message and
    /// payload are written by the caller right after (the payload may be a file region).
    public static func writeHeader(
        type: FrameType, flags: UInt8 = 0, method: UInt16 = 0, streamID: UInt32, messageBytes: Int, payloadBytes: Int,
        to buffer: inout ByteBuffer
    ) {
        let frameLength = lengthCoveredHeaderBytes + messageBytes + payloadBytes
        precondition(frameLength <= Int(UInt32.max), "frame over 4 GiB")
        buffer.writeInteger(UInt32(frameLength))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(method)
        buffer.writeInteger(streamID)
        buffer.writeInteger(UInt32(messageBytes))
    }

    /// Encodes the whole frame (header, message, payload) into one buffer.
    public func encode(into buffer: inout ByteBuffer) {
        Self.writeHeader(type: type, flags: flags, method: method, streamID: streamID,
                         messageBytes: message.readableBytes, payloadBytes: payload.readableBytes, to: &buffer)
        buffer.writeImmutableBuffer(message)
        buffer.writeImmutableBuffer(payload)
    }
}

/// A framing violation: the connection cannot continue.
public struct FramingError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kind of violation.
    public enum Code: String, Hashable, Sendable {
        /// The bytes do not follow the frame layout.
        case malformed
        /// The frame is longer than `max_frame_bytes` (answered with RESOURCE_EXHAUSTED).
        case tooLarge
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A malformed frame.
    public init(_ message: String) {
        self.init(.malformed, message)
    }
    public var description: String { "framing error: \(message)" }
}

/// Splits the byte stream into frames; a `ByteToMessageDecoder` for SwiftNIO.
///
/// It consumes a whole frame or nothing (`.needMoreData`), never buffers more than
/// one frame of `maxFrameBytes`, and throws `FramingError` for a frame that breaks
/// the layout (too short or too long, unknown type or flags, message longer than
/// the frame), so the connection can answer GOAWAY and close.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = Frame

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = 16 << 20) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer went away mid-frame.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }

    /// Decodes one frame from the front of `buffer`, or returns nil (consuming nothing) if it is incomplete.
    public static func decodeFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> Frame? {
        guard let frameLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        // Check what can be checked as early as possible, so that garbage is refused at once.
        guard frameLength >= UInt32(Frame.lengthCoveredHeaderBytes) else {
            throw FramingError("frame length \(frameLength) is shorter than the 12 header bytes it must cover")
        }
        guard Int(frameLength) + 4 <= maxFrameBytes else {
            throw FramingError(.tooLarge, "frame of \(Int(frameLength) + 4) bytes is over the limit of \(maxFrameBytes)")
        }
        if buffer.readableBytes >= 5 {
            let rawType = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)!
            guard FrameType(rawValue: rawType) != nil else { throw FramingError("unknown frame type \(rawType)") }
        }
        if buffer.readableBytes >= 6 {
            let flags = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt8.self)!
            guard flags & ~Frame.knownFlags == 0 else { throw FramingError("unknown flag bits \(flags)") }
        }
        guard buffer.readableBytes >= 4 + Int(frameLength) else { return nil }
        let start = buffer.readerIndex
        let type = FrameType(rawValue: buffer.getInteger(at: start + 4, as: UInt8.self)!)!
        let flags = buffer.getInteger(at: start + 5, as: UInt8.self)!
        let method = buffer.getInteger(at: start + 6, as: UInt16.self)!
        let streamID = buffer.getInteger(at: start + 8, as: UInt32.self)!
        let messageLength = buffer.getInteger(at: start + 12, as: UInt32.self)!
        let bodyBytes = Int(frameLength) - Frame.lengthCoveredHeaderBytes
        guard Int(messageLength) <= bodyBytes else {
            throw FramingError("message length \(messageLength) is longer than the frame body of \(bodyBytes) bytes")
        }
        guard type == .goAway || streamID != 0 else { throw FramingError("stream id 0 is reserved for GOAWAY") }
        guard type == .request || method == 0 else { throw FramingError("method \(method) set on a non-request frame") }
        buffer.moveReaderIndex(forwardBy: Frame.headerBytes)
        let message = buffer.readSlice(length: Int(messageLength))!
        let payload = buffer.readSlice(length: bodyBytes - Int(messageLength))!
        return Frame(type: type, flags: flags, method: method, streamID: streamID, message: message, payload: payload)
    }
}

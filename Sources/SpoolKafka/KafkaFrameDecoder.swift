import NIOCore

/// Splits a Kafka byte stream into request frames (int32 size, then that many bytes);
/// a `ByteToMessageDecoder` for SwiftNIO.
///
/// It emits each frame's bytes after the size (a slice, no copy), consumes a whole
/// frame or nothing, and refuses a frame from its size field alone (before buffering
/// it) when the size is below the smallest request header or above `maxFrameBytes`.
public struct KafkaFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// api key, api version, correlation id, client id length.
    public static let requestHeaderBytesMin = 10
    /// Default maximum request size (Kafka's `socket.request.max.bytes` is 100 MiB).
    public static let defaultMaxFrameBytes = 100 << 20

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = KafkaFrameDecoder.defaultMaxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer went away mid-request.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }

    /// One frame from the front of `buffer`, or nil (consuming nothing) if incomplete.
    public static func decodeFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard size >= requestHeaderBytesMin, Int(size) <= maxFrameBytes else {
            throw KafkaDecodingError(.invalidFrameSize, "request of \(size) bytes (limit \(maxFrameBytes))")
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))!
    }
}

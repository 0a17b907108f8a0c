import NIOCore
import SpoolBroker
import SpoolTransport

/// Splits a Kafka byte stream into request frames (int32 size, then that many bytes);
/// a `ByteToMessageDecoder` for SwiftNIO.
///
/// It emits each frame's bytes after the size (a slice, no copy), consumes a whole
/// frame or nothing, and refuses a frame from its size field alone (before buffering
/// it) when the size is below the smallest request header or above `maxFrameBytes`.
/// With a `ConnectionBudget`, a request not complete in the bytes received so far first
/// reserves its whole size in the broker-wide inbound budget (`InboundFrameBudget`, shared
/// with the native listener); when that has no room the request is refused
/// (`inboundBudgetExhausted`) and the connection closed. Starting and finishing such a
/// request is announced (`FrameProgress`) to the `TransportHandler` behind the decoder,
/// which drops a sender that does not finish within `frameCompletionSeconds`.
public struct KafkaFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// api key, api version, correlation id, client id length.
    public static let requestHeaderBytesMin = 10
    /// Default maximum request size (Kafka's `socket.request.max.bytes` is 100 MiB).
    public static let defaultMaxFrameBytes = 100 << 20

    public let maxFrameBytes: Int
    /// The connection's share of the broker's inbound budget (no accounting without one).
    let inbound: InboundFrameBudget

    /// The connection's share of the broker's budgets, or nil for no inbound accounting.
    public var budget: ConnectionBudget? { inbound.budget }

    public init(maxFrameBytes: Int = KafkaFrameDecoder.defaultMaxFrameBytes, budget: ConnectionBudget? = nil) {
        self.maxFrameBytes = maxFrameBytes
        inbound = InboundFrameBudget(budget)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let frame = try Self.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes) {
            inbound.frameCompleted(context: context)
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        // Incomplete: once the size is known (and checked), reserve room for the whole request.
        if let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) {
            let bytes = Int(size) + 4
            guard inbound.frameIncomplete(bytes: bytes, context: context) else {
                throw KafkaDecodingError(
                    .inboundBudgetExhausted,
                    "a request of \(bytes) bytes does not fit in the broker's inbound buffer budget (\(inbound.inboundBytesMax) bytes over all connections)")
            }
        }
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer went away mid-request.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        inbound.release()
        return .needMoreData
    }

    public mutating func decoderRemoved(context: ChannelHandlerContext) {
        inbound.release()
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

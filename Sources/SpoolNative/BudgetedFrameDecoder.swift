import NIOCore
import SpoolBroker
import SpoolProtocol
import SpoolTransport

/// The native frame decoder under the broker's inbound budget (`InboundFrameBudget`,
/// shared with the Kafka listener): a frame that is not complete in the bytes received so
/// far reserves its whole length (known from its header) in the connection's
/// `ConnectionBudget` before more of it is buffered; when the broker-wide budget has no
/// room the frame is refused (`RESOURCE_EXHAUSTED`, GOAWAY). Starting and finishing such a
/// frame is announced (`FrameProgress`) to the `TransportHandler` behind it, which drops
/// a sender that takes too long to finish.
struct BudgetedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame

    let maxFrameBytes: Int
    let inbound: InboundFrameBudget

    init(maxFrameBytes: Int, budget: ConnectionBudget) {
        self.maxFrameBytes = maxFrameBytes
        inbound = InboundFrameBudget(budget)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let frame = try FrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes) {
            inbound.frameCompleted(context: context)
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        // Incomplete: once the length is known (and was checked against max_frame_bytes by
        // decodeFrame), reserve room for the whole frame before buffering more of it.
        if let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) {
            let bytes = Int(length) + 4
            guard inbound.frameIncomplete(bytes: bytes, context: context) else {
                throw SpoolStatusError(.resourceExhausted, "a frame of \(bytes) bytes does not fit in the broker's inbound buffer budget (\(inbound.inboundBytesMax) bytes over all connections); send it again later")
            }
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer went away mid-frame.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        inbound.release()
        return .needMoreData
    }

    mutating func decoderRemoved(context: ChannelHandlerContext) {
        inbound.release()
    }
}

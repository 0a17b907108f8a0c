import NIOCore
import SpoolBroker
import SpoolProtocol

/// The native frame decoder under the broker's inbound budget: a frame that is not
/// complete in the bytes received so far reserves its whole length (known from its
/// header) in the connection's `ConnectionBudget` before more of it is buffered; when the
/// broker-wide budget has no room the frame is refused (`RESOURCE_EXHAUSTED`, GOAWAY).
/// Starting and finishing such a frame is announced to the handlers behind it
/// (`FrameProgress`), which drop a sender that takes too long to finish.
struct BudgetedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame

    /// Sent down the pipeline when an unfinished frame starts and when it completes.
    enum FrameProgress {
        case started(bytes: Int)
        case completed
    }

    let maxFrameBytes: Int
    let budget: ConnectionBudget

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let frame = try FrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: maxFrameBytes) {
            if budget.hasInboundReservation {
                budget.releaseInbound()
                context.fireUserInboundEventTriggered(FrameProgress.completed)
            }
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        // Incomplete: once the length is known (and was checked against max_frame_bytes by
        // decodeFrame), reserve room for the whole frame before buffering more of it.
        if !budget.hasInboundReservation, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) {
            let bytes = Int(length) + 4
            guard budget.reserveInbound(bytes) else {
                throw SpoolStatusError(.resourceExhausted, "a frame of \(bytes) bytes does not fit in the broker's inbound buffer budget (\(budget.budgets.config.inboundBufferedBytesMax) bytes over all connections); send it again later")
            }
            context.fireUserInboundEventTriggered(FrameProgress.started(bytes: bytes))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer went away mid-frame.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        budget.releaseInbound()
        return .needMoreData
    }

    mutating func decoderRemoved(context: ChannelHandlerContext) {
        budget.releaseInbound()
    }
}

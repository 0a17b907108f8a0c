import NIOCore
import SpoolProtocol

/// Whole frames the broker writes without a call to answer.
enum NativeFrames {
    /// A GOAWAY frame carrying `status`: the broker closes the connection after it.
    static func goAway(_ status: SpoolStatusError, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let bytes: [UInt8] = try status.status.serializedBytes()
        var buffer = allocator.buffer(capacity: Frame.headerBytes + bytes.count)
        Frame.writeHeader(type: .goAway, streamID: 0, messageBytes: bytes.count, payloadBytes: 0, to: &buffer)
        buffer.writeBytes(bytes)
        return buffer
    }
}

/// Placed on a connection the broker cannot admit (over `max.connections`): says
/// GOAWAY with `RESOURCE_EXHAUSTED` as soon as the connection is active, then closes it.
final class ConnectionRefuser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let status: SpoolStatusError

    init(_ status: SpoolStatusError) {
        self.status = status
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        guard let frame = try? NativeFrames.goAway(status, allocator: channel.allocator) else {
            return context.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sent before it saw the GOAWAY is dropped.
    }
}

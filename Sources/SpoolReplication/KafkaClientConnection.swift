import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolKafka

/// One client connection to another broker's Kafka listener, for the follower fetcher:
/// one request at a time (the fetcher waits for each answer), frames length-prefixed.
final class KafkaClientConnection: Sendable {
    /// Longest a connect may take before the fetcher backs off and tries again.
    static let connectTimeout: TimeAmount = .seconds(3)
    /// Largest response accepted (a fetch answer is bounded by the request's max bytes).
    static let maxResponseBytes = 64 << 20

    let channel: Channel
    private let handler: ResponseHandler
    private let correlation = NIOLockedValueBox<Int32>(0)

    private init(channel: Channel, handler: ResponseHandler) {
        self.channel = channel
        self.handler = handler
    }

    static func connect(host: String, port: Int, group: EventLoopGroup) async throws -> KafkaClientConnection {
        let handler = ResponseHandler()
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maxBytes: maxResponseBytes)))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        return KafkaClientConnection(channel: channel, handler: handler)
    }

    /// Sends `body` as `api` at `version` and returns the response body (after the
    /// correlation id and, for flexible versions, the header's tag section).
    func call<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, clientId: String, _ body: M) async throws -> ByteBuffer {
        let id = correlation.withLockedValue { $0 += 1; return $0 }
        var writer = KafkaWriter()
        writer.writeInt32(0)
        KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: id, clientId: clientId).write(to: &writer)
        body.write(to: &writer, version: version)
        writer.buffer.setInteger(Int32(writer.buffer.readableBytes - 4), at: 0)
        let frame = writer.buffer
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let handler = handler
        channel.eventLoop.execute { [channel] in
            handler.expect(promise)
            channel.writeAndFlush(frame).cascadeFailure(to: promise)
        }
        var response = try await promise.futureResult.get()
        guard let answered = response.readInteger(as: Int32.self), answered == id else {
            throw ReplicationError("response to request \(id) carries another correlation id")
        }
        if api.responseHeaderVersion(version) >= 1 {
            var reader = KafkaReader(response)
            try KafkaRequestHeader.skipTagSection(from: &reader)
            response = reader.buffer
        }
        return response
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// A Kafka frame: an int32 size, then that many bytes.
struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 4, Int(size) <= maxBytes else { throw ReplicationError("response frame of \(size) bytes") }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// Completes the one outstanding request's promise with its response frame; fails it
/// when the connection fails or closes.
final class ResponseHandler: ChannelInboundHandler, @unchecked Sendable {  // event-loop confined
    typealias InboundIn = ByteBuffer
    private var pending: [EventLoopPromise<ByteBuffer>] = []

    func expect(_ promise: EventLoopPromise<ByteBuffer>) { pending.append(promise) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !pending.isEmpty else { return }
        pending.removeFirst().succeed(frame)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(ReplicationError("connection to the leader closed"))
    }

    private func failAll(_ error: Error) {
        let waiting = pending
        pending.removeAll()
        for p in waiting { p.fail(error) }
    }
}

/// A failure of the follower fetcher (connection, protocol).
public struct ReplicationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

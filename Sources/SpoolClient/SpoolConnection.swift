import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolProtocol
import SwiftProtobuf

/// One TCP connection to a broker carrying many concurrent calls, multiplexed by stream id.
///
/// ```swift
/// let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: 9292)
/// let topics: Spool_V1_ListTopicsResponse = try await connection.call(.listTopics, Spool_V1_ListTopicsRequest())
/// ```
public final class SpoolConnection: Sendable {
    /// A call's answer: the response message bytes and the raw payload.
    public struct Reply: Sendable {
        public var message: ByteBuffer
        public var payload: ByteBuffer
    }

    let channel: Channel
    let state: NIOLockedValueBox<State>
    public let group: EventLoopGroup
    let ownsGroup: Bool

    struct State {
        var nextStreamID: UInt32 = 1
        var unary: [UInt32: PendingReply] = [:]
        var streams: [UInt32: AsyncThrowingStream<Reply, Error>.Continuation] = [:]
        var closedError: Error?
        var handshake = Spool_V1_HandshakeResponse()
    }

    init(channel: Channel, state: NIOLockedValueBox<State>, group: EventLoopGroup, ownsGroup: Bool) {
        self.channel = channel
        self.state = state
        self.group = group
        self.ownsGroup = ownsGroup
    }

    /// Connects and performs the version handshake.
    public static func connect(host: String, port: Int, maxFrameBytes: Int = 64 << 20, group: EventLoopGroup? = nil) async throws -> SpoolConnection {
        let ownsGroup = group == nil
        let group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = NIOLockedValueBox(State())
        do {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
                        try channel.pipeline.syncOperations.addHandler(ClientHandler(state: state))
                    }
                }
                .connect(host: host, port: port).get()
            let connection = SpoolConnection(channel: channel, state: state, group: group, ownsGroup: ownsGroup)
            var hello = Spool_V1_HandshakeRequest()
            hello.minVersion = 1
            hello.maxVersion = 1
            hello.clientID = "spool-swift"
            let handshake: Spool_V1_HandshakeResponse = try await connection.call(.handshake, hello)
            connection.state.withLockedValue { $0.handshake = handshake }
            return connection
        } catch {
            if ownsGroup { try? await group.shutdownGracefully() }
            throw error
        }
    }

    /// The broker's answer to the handshake: protocol version and limits
    /// (`maxFrameBytes`, `maxInFlight`; 0 when the broker did not say).
    public var handshake: Spool_V1_HandshakeResponse { state.withLockedValue { $0.handshake } }

    /// A call whose request is on its way and whose reply can be awaited later.
    public final class PendingReply: Sendable {
        private let state = NIOLockedValueBox<(result: Result<Reply, Error>?, waiter: CheckedContinuation<Reply, Error>?)>((nil, nil))

        init() {}

        func complete(_ result: Result<Reply, Error>) {
            let waiter = state.withLockedValue { s -> CheckedContinuation<Reply, Error>? in
                if let w = s.waiter { s.waiter = nil; return w }
                s.result = result
                return nil
            }
            waiter?.resume(with: result)
        }

        /// The reply (waits for it).
        public var reply: Reply {
            get async throws {
                try await withCheckedThrowingContinuation { c in
                    let ready = state.withLockedValue { s -> Result<Reply, Error>? in
                        if let r = s.result { return r }
                        s.waiter = c
                        return nil
                    }
                    if let ready { c.resume(with: ready) }
                }
            }
        }
    }

    /// Writes a request now (synchronously, so calls leave in the order they are started)
    /// and returns a handle to await its reply.
    public func startCall(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil) throws -> PendingReply {
        let bytes: [UInt8] = try message.serializedBytes()
        let pending = PendingReply()
        let id = try register { s, id in s.unary[id] = pending }
        send(.request, method: method.rawValue, streamID: id, message: bytes, payload: payload)
        return pending
    }

    /// A unary call with an optional request payload; returns the raw reply.
    public func rawCall(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil) async throws -> Reply {
        try await startCall(method, message, payload: payload).reply
    }

    /// A unary call decoded into `R`.
    public func call<R: SwiftProtobuf.Message>(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil) async throws -> R {
        let reply = try await rawCall(method, message, payload: payload)
        return try ProtoCodec.decode(R.self, from: reply.message)
    }

    /// Opens a server stream (Subscribe); returns its id and the stream of events.
    public func openStream(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message) throws -> (UInt32, AsyncThrowingStream<Reply, Error>) {
        let bytes: [UInt8] = try message.serializedBytes()
        let (stream, continuation) = AsyncThrowingStream<Reply, Error>.makeStream()
        let id = try register { s, id in s.streams[id] = continuation }
        continuation.onTermination = { [self] reason in
            if case .cancelled = reason { cancel(id) }
        }
        send(.request, method: method.rawValue, streamID: id, message: bytes, payload: nil)
        return (id, stream)
    }

    /// Picks the next free stream id (never 0) and records the call under it.
    private func register(_ record: (inout State, UInt32) -> Void) throws -> UInt32 {
        try state.withLockedValue { s in
            if let error = s.closedError { throw error }
            var id = s.nextStreamID
            while id == 0 || s.unary[id] != nil || s.streams[id] != nil { id &+= 1 }
            s.nextStreamID = id &+ 1
            record(&s, id)
            return id
        }
    }

    /// Grants `bytes` more credit to a stream.
    public func grantCredit(_ streamID: UInt32, bytes: Int) {
        var credit = Spool_V1_Credit()
        credit.bytes = UInt32(clamping: bytes)
        send(.credit, method: 0, streamID: streamID, message: (try? credit.serializedBytes()) ?? [], payload: nil)
    }

    /// Abandons a stream.
    public func cancel(_ streamID: UInt32) {
        state.withLockedValue { _ = $0.streams.removeValue(forKey: streamID) }
        send(.cancel, method: 0, streamID: streamID, message: [], payload: nil)
    }

    private func send(_ type: FrameType, method: UInt16, streamID: UInt32, message: [UInt8], payload: ByteBuffer?) {
        var buffer = channel.allocator.buffer(capacity: Frame.headerBytes + message.count)
        Frame.writeHeader(type: type, method: method, streamID: streamID, messageBytes: message.count,
                          payloadBytes: payload?.readableBytes ?? 0, to: &buffer)
        buffer.writeBytes(message)
        guard let payload else {
            channel.writeAndFlush(buffer, promise: nil)
            return
        }
        // Header and payload must leave back to back: do both writes in one turn of the
        // event loop, or another task's frame could land between them.
        let channel = self.channel
        let header = buffer
        if channel.eventLoop.inEventLoop {
            channel.write(header, promise: nil)
            channel.writeAndFlush(payload, promise: nil)
        } else {
            channel.eventLoop.execute {
                channel.write(header, promise: nil)
                channel.writeAndFlush(payload, promise: nil)
            }
        }
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE.
    public func close() async {
        try? await channel.close()
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}

/// Routes inbound frames to the waiting calls and streams.
final class ClientHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = Frame

    let state: NIOLockedValueBox<SpoolConnection.State>

    init(state: NIOLockedValueBox<SpoolConnection.State>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let reply = SpoolConnection.Reply(message: frame.message, payload: frame.payload)
        switch frame.type {
        case .response:
            if let c = state.withLockedValue({ $0.unary.removeValue(forKey: frame.streamID) }) {
                c.complete(.success(reply))
            } else if let stream = state.withLockedValue({ frame.endStream ? $0.streams.removeValue(forKey: frame.streamID) : $0.streams[frame.streamID] }) {
                stream.yield(reply)
                if frame.endStream { stream.finish() }
            }
        case .status:
            let status = (try? ProtoCodec.decode(Spool_V1_Status.self, from: frame.message)).map(SpoolStatusError.init) ?? SpoolStatusError(.unknown, "unreadable status")
            if let c = state.withLockedValue({ $0.unary.removeValue(forKey: frame.streamID) }) {
                c.complete(.failure(status))
            } else if let stream = state.withLockedValue({ $0.streams.removeValue(forKey: frame.streamID) }) {
                if status.code == .cancelled { stream.finish() } else { stream.finish(throwing: status) }
            }
        case .goAway:
            let status = (try? ProtoCodec.decode(Spool_V1_Status.self, from: frame.message)).map(SpoolStatusError.init) ?? SpoolStatusError(.unavailable, "broker closed the connection")
            failAll(status)
            context.close(promise: nil)
        default:
            failAll(SpoolStatusError(.internal, "broker sent an unexpected \(frame.type) frame"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SpoolStatusError(.unavailable, "connection to the broker closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(SpoolStatusError(.unavailable, "connection error: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        let (unary, streams) = state.withLockedValue { s in
            defer {
                s.unary.removeAll()
                s.streams.removeAll()
                if s.closedError == nil { s.closedError = error }
            }
            return (Array(s.unary.values), Array(s.streams.values))
        }
        unary.forEach { $0.complete(.failure(error)) }
        streams.forEach { $0.finish(throwing: error) }
    }
}

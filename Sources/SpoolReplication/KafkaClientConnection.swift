import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SpoolKafka
import SpoolSecurity

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

    /// Connects to `host:port` as `security` says: TLS first when the protocol uses it, then
    /// the SASL login (SaslHandshake v1, SaslAuthenticate v1) before the connection is handed out.
    static func connect(host: String, port: Int, group: EventLoopGroup, security: InterBrokerSecurity = .plaintext,
                        clientId: String) async throws -> KafkaClientConnection {
        let handler = ResponseHandler()
        // SNI carries names only: an IP address is verified against the certificate's IP SANs.
        let name = security.tlsServerName ?? host
        let serverName: String? = (try? SocketAddress(ipAddress: name, port: 0)) == nil ? name : nil
        let tls = security.tls
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maxBytes: maxResponseBytes)))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        let connection = KafkaClientConnection(channel: channel, handler: handler)
        if let sasl = security.sasl {
            do {
                try await connection.authenticate(sasl, clientId: clientId)
            } catch {
                connection.close()
                throw error
            }
        }
        return connection
    }

    /// The SASL login (the same exchange as the tools' `KafkaBlockingConnection.authenticate`).
    private func authenticate(_ sasl: InterBrokerSecurity.Sasl, clientId: String) async throws {
        var body = try await call(.saslHandshake, version: 1, clientId: clientId, SaslHandshakeRequest(mechanism: sasl.mechanism))
        let handshake = try SaslHandshakeResponse(from: &body, version: 1)
        guard handshake.errorCode == 0 else {
            throw ReplicationError(.authentication, "the leader refused SASL mechanism \(sasl.mechanism) (error \(handshake.errorCode)); it offers \(handshake.mechanisms.joined(separator: ", "))")
        }
        do {
            var exchange = try SaslClientExchange(mechanism: sasl.mechanism, user: sasl.user, password: sasl.password)
            var token = exchange.firstToken
            while true {
                var body = try await call(.saslAuthenticate, version: 1, clientId: clientId, SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: token)))
                let answer = try SaslAuthenticateResponse(from: &body, version: 1)
                guard answer.errorCode == 0 else {
                    throw ReplicationError(.authentication, "the leader refused \(sasl.user)'s \(sasl.mechanism) login: \(answer.errorMessage ?? "error \(answer.errorCode)")")
                }
                guard let next = try exchange.respond(to: Array(answer.authBytes.readableBytesView)) else { return }
                token = next
            }
        } catch let error as SecurityError {
            throw ReplicationError(.authentication, "\(sasl.mechanism) login as \(sasl.user) failed: \(error.message)")
        }
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

/// A failure of the follower fetcher, by kind: the connection or protocol, or the login.
public struct ReplicationError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public enum Code: Sendable {
        /// The connection, a frame or an answer.
        case connection
        /// The leader refused the follower's SASL login or mechanism (a configuration error).
        case authentication
        /// The leader refused the fetch itself (CLUSTER_AUTHORIZATION_FAILED: the follower's
        /// principal lacks CLUSTER_ACTION).
        case authorization
    }

    public var code: Code
    public var description: String
    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    init(_ description: String) { self.init(.connection, description) }
}

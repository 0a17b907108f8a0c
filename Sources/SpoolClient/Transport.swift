import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SpoolProtocol
import SpoolSecurity
import SwiftProtobuf

/// One TCP connection to a broker, after its handshake: the table of calls in flight,
/// frame writing, and the deadline sweep. `SpoolConnection` replaces a broken one.
final class Transport: Sendable {
    /// Calls in flight and the limits learnt in the handshake.
    struct CallTable {
        var nextStreamID: UInt32 = 1
        var unary: [UInt32: (reply: SpoolPendingReply, method: SpoolMethod, deadline: NIODeadline)] = [:]
        var streams: [UInt32: AsyncThrowingStream<SpoolReply, Error>.Continuation] = [:]
        var closedError: Error?
        /// The broker's frame limit (from the handshake); requests above it are refused here.
        var maxFrameBytes = Int.max
        /// The broker's limit on calls in flight per connection (from the handshake).
        var maxInFlight = Int.max
        /// The handshake's whole answer.
        var handshake = Spool_V1_HandshakeResponse()
        /// The principal Authenticate proved (`User:name`); nil: not authenticated by SCRAM.
        var principal: String?
    }

    let channel: Channel
    let calls: NIOLockedValueBox<CallTable>
    let address: String

    private init(channel: Channel, calls: NIOLockedValueBox<CallTable>, address: String) {
        self.channel = channel
        self.calls = calls
        self.address = address
    }

    /// Connects, performs the handshake, and starts the deadline sweep. Every failure is
    /// a `SpoolClientError` that names the address and says what happened.
    static func open(_ config: ConnectionConfig, group: EventLoopGroup, onClose: @escaping @Sendable (Transport, Error) -> Void) async throws -> Transport {
        let calls = NIOLockedValueBox(CallTable())
        let address = config.address
        let box = NIOLockedValueBox<Transport?>(nil)
        let channel: Channel
        let tls = try config.tls.map { try Self.tlsHandler(for: $0, config) }
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.milliseconds(Int64(config.connectTimeoutMillis)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(try tls()) }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: config.maxInboundFrameBytes)))
                        try channel.pipeline.syncOperations.addHandler(ClientHandler(calls: calls, address: address, tls: tls != nil) { error in
                            if let t = box.withLockedValue({ $0 }) { onClose(t, error) }
                        })
                    }
                }
                .connect(host: config.host, port: config.port).get()
        } catch {
            throw Self.connectError(error, config)
        }
        let transport = Transport(channel: channel, calls: calls, address: address)
        box.withLockedValue { $0 = transport }
        let sweep = channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(config.deadlineSweepMillis)),
                                                           delay: .milliseconds(Int64(config.deadlineSweepMillis))) { _ in
            transport.expireCalls(now: .now())
        }
        channel.closeFuture.whenComplete { _ in sweep.cancel() }

        var hello = Spool_V1_HandshakeRequest()
        hello.minVersion = 1
        hello.maxVersion = 1
        hello.clientID = config.clientID
        do {
            let deadline = NIODeadline.now() + .milliseconds(Int64(config.handshakeTimeoutMillis))
            let reply = try await transport.startCall(.handshake, hello, deadline: deadline).reply
            let answer = try ProtoCodec.decode(Spool_V1_HandshakeResponse.self, from: reply.message)
            calls.withLockedValue { t in
                t.handshake = answer
                if answer.maxFrameBytes > 0 { t.maxFrameBytes = Int(answer.maxFrameBytes) }
                if answer.maxInFlight > 0 { t.maxInFlight = Int(answer.maxInFlight) }
            }
            if let sasl = config.sasl {
                let principal = try await transport.authenticate(sasl, deadline: deadline)
                calls.withLockedValue { $0.principal = principal }
            }
            return transport
        } catch let error as SpoolClientError where error.code == .deadlineExceeded {
            channel.close(promise: nil)
            throw SpoolClientError(.handshakeTimeout,
                                   "connected to \(address), but it sent no Spool handshake answer within \(Self.seconds(config.handshakeTimeoutMillis)): is it a Spool broker?")
        } catch let error as SpoolClientError where error.code == .connectionLost {
            channel.close(promise: nil)
            if config.tls != nil {
                throw SpoolClientError(.tlsFailed, "connected to \(address) over TLS, but it closed the connection during the handshake: does the listener speak TLS (a plaintext one has no --ssl-certificate)?")
            }
            throw SpoolClientError(.notASpoolBroker,
                "connected to \(address), but it closed the connection during the handshake: is it a Spool broker? (a TLS listener needs the client's TLS settings, e.g. --tls-ca)")
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// A maker of the TLS handler for each connection attempt (the context is made once,
    /// so a bad CA or key file fails before connecting).
    static func tlsHandler(for tls: ClientTLSConfig, _ config: ConnectionConfig) throws -> @Sendable () throws -> NIOSSLClientHandler {
        let context: NIOSSLContext
        do {
            context = try TLSSettings.makeClientContext(caPath: tls.caPath, certificatePath: tls.certificatePath, keyPath: tls.keyPath)
        } catch {
            throw SpoolClientError(.tlsFailed, "TLS to \(config.address): \(error.message)")
        }
        // SNI carries names only: an IP address is verified against the certificate's IP SANs.
        let name = tls.serverName ?? config.host
        let serverName: String? = (try? SocketAddress(ipAddress: name, port: 0)) == nil ? name : nil
        return { try NIOSSLClientHandler(context: context, serverHostname: serverName) }
    }

    /// The SCRAM exchange of FRAMING.md ("Authentication"): two Authenticate calls, with the
    /// same `ScramClient` as the Kafka tools use. Returns the principal the broker granted.
    func authenticate(_ sasl: ClientSaslConfig, deadline: NIODeadline) async throws -> String {
        guard let mechanism = ScramMechanism(rawValue: sasl.mechanism) else {
            throw SpoolClientError(.invalidUse, "unknown SASL mechanism '\(sasl.mechanism)'; use one of \(ClientSaslConfig.mechanisms.joined(separator: ", "))")
        }
        let who = "authentication to \(address) as \(sasl.user) (\(sasl.mechanism))"
        var scram = ScramClient(mechanism: mechanism, user: sasl.user, password: sasl.password)
        func step(_ token: [UInt8]) async throws -> Spool_V1_AuthenticateResponse {
            var request = Spool_V1_AuthenticateRequest()
            request.mechanism = sasl.mechanism
            request.token = Data(token)
            do {
                let reply = try await startCall(.authenticate, request, deadline: deadline).reply
                return try ProtoCodec.decode(Spool_V1_AuthenticateResponse.self, from: reply.message)
            } catch let status as SpoolStatusError where status.code == .unauthenticated {
                throw SpoolClientError(.authenticationFailed, "\(who) failed: \(status.message)")
            } catch let status as SpoolStatusError {
                throw SpoolClientError(.authenticationFailed, "\(who) failed: \(status.code.name): \(status.message)")
            }
        }
        do {
            let first = try await step(scram.clientFirst)
            let final = try await step(try scram.receiveServerFirst(Array(first.token)))
            guard final.complete else { throw SpoolClientError(.authenticationFailed, "\(who): the broker did not complete the exchange") }
            try scram.verifyServerFinal(Array(final.token))
            return final.principal
        } catch let error as SecurityError {
            channel.close(promise: nil)
            throw SpoolClientError(.authenticationFailed, "\(who) failed: \(error.message)")
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    static func seconds(_ millis: Int) -> String {
        millis % 1000 == 0 ? "\(millis / 1000) s" : "\(millis) ms"
    }

    /// Turns NIO's connect failures into a sentence: "cannot connect to 127.0.0.1:9999: connection refused".
    static func connectError(_ error: Error, _ config: ConnectionConfig) -> SpoolClientError {
        let prefix = "cannot connect to \(config.address)"
        if let e = error as? ChannelError, case .connectTimeout = e {
            return SpoolClientError(.connectTimeout, "\(prefix): no answer within \(seconds(config.connectTimeoutMillis))")
        }
        if let e = error as? NIOConnectionError {
            if let failure = e.connectionErrors.first {
                return connectError(failure.error, config)
            }
            return SpoolClientError(.unknownHost, "\(prefix): cannot resolve host '\(config.host)'")
        }
        if let e = error as? IOError {
            let reason = e.errnoCode == ECONNREFUSED ? "connection refused" : errnoText(e.errnoCode)
            return SpoolClientError(e.errnoCode == ECONNREFUSED || e.errnoCode == EHOSTUNREACH || e.errnoCode == ENETUNREACH ? .connectionRefused : .connectionLost,
                                    "\(prefix): \(reason)")
        }
        return SpoolClientError(.connectionRefused, "\(prefix): \(error)")
    }

    /// Writes a request now (synchronously, so calls leave in the order they are started).
    /// A request larger than the broker's frame limit is refused here, before a byte is sent:
    /// the broker would answer it with GOAWAY and every call on the connection would fail.
    func startCall(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil, deadline: NIODeadline) throws -> SpoolPendingReply {
        let bytes: [UInt8] = try message.serializedBytes()
        let frameBytes = Frame.headerBytes + bytes.count + (payload?.readableBytes ?? 0)
        let pending = SpoolPendingReply()
        let id = try calls.withLockedValue { t -> UInt32 in
            if let error = t.closedError { throw error }
            guard frameBytes <= t.maxFrameBytes else {
                throw SpoolClientError(.requestTooLarge, "\(method) request of \(frameBytes) bytes is over the broker's frame limit of \(t.maxFrameBytes) bytes; it was not sent")
            }
            guard t.unary.count + t.streams.count < t.maxInFlight else {
                throw SpoolClientError(.tooManyCallsInFlight, "\(t.maxInFlight) calls already in flight to \(address) (the broker's limit)")
            }
            let id = Self.nextID(&t)
            t.unary[id] = (pending, method, deadline)
            return id
        }
        send(.request, method: method.rawValue, streamID: id, message: bytes, payload: payload)
        return pending
    }

    /// Opens a server stream (Subscribe); returns its id and the stream of events.
    func openStream(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message) throws -> (UInt32, AsyncThrowingStream<SpoolReply, Error>) {
        let bytes: [UInt8] = try message.serializedBytes()
        let (stream, continuation) = AsyncThrowingStream<SpoolReply, Error>.makeStream()
        let id = try calls.withLockedValue { t -> UInt32 in
            if let error = t.closedError { throw error }
            let id = Self.nextID(&t)
            t.streams[id] = continuation
            return id
        }
        continuation.onTermination = { [self] reason in
            if case .cancelled = reason { cancel(id) }
        }
        send(.request, method: method.rawValue, streamID: id, message: bytes, payload: nil)
        return (id, stream)
    }

    /// The next free stream id (never 0).
    private static func nextID(_ t: inout CallTable) -> UInt32 {
        var id = t.nextStreamID
        while id == 0 || t.unary[id] != nil || t.streams[id] != nil { id &+= 1 }
        t.nextStreamID = id &+ 1
        return id
    }

    func grantCredit(_ streamID: UInt32, bytes: Int) throws {
        var credit = Spool_V1_Credit()
        credit.bytes = UInt32(clamping: bytes)
        send(.credit, method: 0, streamID: streamID, message: try credit.serializedBytes(), payload: nil)
    }

    func cancel(_ streamID: UInt32) {
        calls.withLockedValue { _ = $0.streams.removeValue(forKey: streamID) }
        send(.cancel, method: 0, streamID: streamID, message: [], payload: nil)
    }

    /// Fails the calls whose deadline has passed; a late reply to one is dropped.
    func expireCalls(now: NIODeadline) {
        let expired = calls.withLockedValue { t -> [(SpoolPendingReply, SpoolMethod)] in
            var out: [(SpoolPendingReply, SpoolMethod)] = []
            for (id, call) in t.unary where call.deadline <= now {
                out.append((call.reply, call.method))
                t.unary.removeValue(forKey: id)
            }
            return out
        }
        for (reply, method) in expired {
            reply.complete(.failure(SpoolClientError(.deadlineExceeded, "\(method) call to \(address) got no answer within its deadline")))
        }
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

    func close() async {
        try? await channel.close()
    }
}

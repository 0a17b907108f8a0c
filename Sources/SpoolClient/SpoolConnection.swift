import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolProtocol
import SwiftProtobuf

/// A connection to a broker carrying many concurrent calls, multiplexed by stream id.
/// When the TCP connection breaks (the broker restarted), calls in flight fail with
/// `SpoolClientError.Code.connectionLost` and the next call reconnects, with an
/// exponential backoff between attempts, within its own deadline.
///
/// ```swift
/// let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: 9292)
/// let topics: Spool_V1_ListTopicsResponse = try await connection.call(.listTopics, Spool_V1_ListTopicsRequest())
/// ```
public final class SpoolConnection: Sendable {
    public typealias Reply = SpoolReply
    public typealias PendingReply = SpoolPendingReply

    public let config: ConnectionConfig
    public let group: EventLoopGroup
    let ownsGroup: Bool
    private let link: NIOLockedValueBox<Link>

    /// The state of the one TCP connection behind this object.
    enum Link {
        case connected(Transport)
        case connecting(Task<Transport, Error>)
        /// Broke (or failed to connect) `failures` times in a row, the last at `since`.
        case disconnected(error: Error, failures: Int, since: ContinuousClock.Instant)
        case closed
    }

    private init(config: ConnectionConfig, group: EventLoopGroup, ownsGroup: Bool) {
        self.config = config
        self.group = group
        self.ownsGroup = ownsGroup
        self.link = NIOLockedValueBox(.disconnected(error: SpoolClientError(.connectionLost, "not connected yet"), failures: 0, since: .now))
    }

    /// Connects and performs the version handshake; fails at once (no retry) with a
    /// `SpoolClientError` that says why, e.g. "cannot connect to 127.0.0.1:9999: connection refused".
    public static func connect(_ config: ConnectionConfig, group: EventLoopGroup? = nil) async throws -> SpoolConnection {
        let connection = SpoolConnection(config: config, group: group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1), ownsGroup: group == nil)
        do {
            _ = try await connection.ready(deadline: .now + .milliseconds(config.connectTimeoutMillis + config.handshakeTimeoutMillis), retry: false)
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    /// A connection that connects on its first call (reconnecting as any), on `group`
    /// (not owned): what `BrokerRouter` opens to each broker it learns of.
    static func deferred(_ config: ConnectionConfig, group: EventLoopGroup) -> SpoolConnection {
        SpoolConnection(config: config, group: group, ownsGroup: false)
    }

    /// Connects to `host:port` with default timeouts.
    public static func connect(host: String, port: Int, maxFrameBytes: Int = 64 << 20, group: EventLoopGroup? = nil) async throws -> SpoolConnection {
        var config = ConnectionConfig(host: host, port: port)
        config.maxInboundFrameBytes = maxFrameBytes
        return try await connect(config, group: group)
    }

    /// The live transport, reconnecting first if the connection broke (waiting out the
    /// backoff, but never past `deadline`).
    @discardableResult
    func ready(deadline: ContinuousClock.Instant, retry: Bool = true) async throws -> Transport {
        while true {
            enum Step { case use(Transport), await(Task<Transport, Error>), wait(ContinuousClock.Instant, Error) }
            let step: Step = try link.withLockedValue { link in
                switch link {
                case .connected(let t): return .use(t)
                case .connecting(let task): return .await(task)
                case .closed: throw SpoolClientError(.closed, "the connection to \(config.address) was closed")
                case .disconnected(let error, let failures, let since):
                    let due = since + .milliseconds(config.backoffMillis(afterFailures: failures))
                    if due > .now { return .wait(due, error) }
                    let task = Task { try await self.attempt(failuresBefore: failures) }
                    link = .connecting(task)
                    return .await(task)
                }
            }
            switch step {
            case .use(let t): return t
            case .await(let task):
                do {
                    return try await task.value
                } catch {
                    // A failed attempt: try again after the backoff if allowed and the deadline allows.
                    if !retry || ContinuousClock.now >= deadline || !isRetriable(error) { throw error }
                }
            case .wait(let due, let error):
                guard due < deadline else { throw error }
                try await Task.sleep(until: due)
            }
        }
    }

    /// One connect-and-handshake attempt; records the outcome in `link`.
    private func attempt(failuresBefore: Int) async throws -> Transport {
        do {
            let transport = try await Transport.open(config, group: group) { [weak self] transport, error in
                self?.transportClosed(transport, error)
            }
            let kept = link.withLockedValue { link -> Bool in
                if case .closed = link { return false }
                link = .connected(transport)
                return true
            }
            if !kept {
                await transport.close()
                throw SpoolClientError(.closed, "the connection to \(config.address) was closed")
            }
            return transport
        } catch {
            link.withLockedValue { link in
                if case .closed = link { return }
                link = .disconnected(error: error, failures: failuresBefore + 1, since: .now)
            }
            throw error
        }
    }

    private func transportClosed(_ transport: Transport, _ error: Error) {
        link.withLockedValue { link in
            if case .connected(let current) = link, current === transport {
                link = .disconnected(error: error, failures: 0, since: .now)
            }
        }
    }

    /// True while the TCP connection is up (it may still break at any moment).
    public var isConnected: Bool {
        link.withLockedValue { if case .connected = $0 { return true } else { return false } }
    }

    /// Reconnects now if the connection is down (after the backoff, within `timeoutMillis`).
    public func reconnect(timeoutMillis: Int? = nil) async throws {
        _ = try await ready(deadline: .now + .milliseconds(timeoutMillis ?? config.requestTimeoutMillis))
    }

    /// Writes a request now (synchronously, so calls leave in the order they are started)
    /// and returns a handle to await its reply. Fails at once with `connectionLost` while
    /// the connection is down: call `reconnect()` (or any async call) to bring it back.
    /// The call fails with `deadlineExceeded` if no answer comes within `timeoutMillis`
    /// (default `requestTimeoutMillis`).
    public func startCall(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil, timeoutMillis: Int? = nil) throws -> PendingReply {
        let transport = try link.withLockedValue { link -> Transport in
            switch link {
            case .connected(let t): return t
            case .closed: throw SpoolClientError(.closed, "the connection to \(config.address) was closed")
            case .disconnected(let error, _, _): throw error
            case .connecting: throw SpoolClientError(.connectionLost, "reconnecting to \(config.address)")
            }
        }
        return try transport.startCall(method, message, payload: payload, deadline: .now() + .milliseconds(Int64(timeoutMillis ?? config.requestTimeoutMillis)))
    }

    /// A unary call with an optional request payload; returns the raw reply. Reconnects
    /// first if needed. `timeoutMillis` bounds the whole call, reconnecting included.
    public func rawCall(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil, timeoutMillis: Int? = nil) async throws -> Reply {
        let millis = timeoutMillis ?? config.requestTimeoutMillis
        let deadline = ContinuousClock.now + .milliseconds(millis)
        let transport = try await ready(deadline: deadline)
        let left = deadline - .now
        let leftMillis = max(1, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
        return try await transport.startCall(method, message, payload: payload, deadline: .now() + .milliseconds(Int64(leftMillis))).reply
    }

    /// A unary call decoded into `R`.
    public func call<R: SwiftProtobuf.Message>(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message, payload: ByteBuffer? = nil, timeoutMillis: Int? = nil) async throws -> R {
        let reply = try await rawCall(method, message, payload: payload, timeoutMillis: timeoutMillis)
        return try ProtoCodec.decode(R.self, from: reply.message)
    }

    /// Opens a server stream (Subscribe) on the current connection; returns its id and the
    /// stream of events. The stream ends with `connectionLost` if the connection breaks.
    public func openStream(_ method: SpoolMethod, _ message: some SwiftProtobuf.Message) throws -> (UInt32, AsyncThrowingStream<Reply, Error>) {
        try current().openStream(method, message)
    }

    /// Grants `bytes` more credit to a stream.
    public func grantCredit(_ streamID: UInt32, bytes: Int) {
        try? current().grantCredit(streamID, bytes: bytes)
    }

    /// Abandons a stream.
    public func cancel(_ streamID: UInt32) {
        (try? current())?.cancel(streamID)
    }

    private func current() throws -> Transport {
        try link.withLockedValue { link in
            if case .connected(let t) = link { return t }
            throw SpoolClientError(.connectionLost, "not connected to \(config.address)")
        }
    }

    /// The broker's answer to the last handshake: protocol version and limits
    /// (`maxFrameBytes`, `maxInFlight`; 0 when the broker did not say, or while disconnected).
    public var handshake: Spool_V1_HandshakeResponse {
        (try? current())?.calls.withLockedValue { $0.handshake } ?? Spool_V1_HandshakeResponse()
    }

    /// The principal SCRAM authentication proved (`User:name`; nil without `sasl`, or while disconnected).
    public var principal: String? {
        (try? current())?.calls.withLockedValue { $0.principal }
    }

    /// The broker's frame limit learnt in the handshake (nil while disconnected).
    public var maxFrameBytes: Int? {
        (try? current())?.calls.withLockedValue { $0.maxFrameBytes }
    }

    /// Closes the connection; calls in flight fail with `connectionLost`, later ones with `closed`.
    public func close() async {
        let previous = link.withLockedValue { link -> Link in
            defer { link = .closed }
            return link
        }
        switch previous {
        case .connected(let t): await t.close()
        case .connecting(let task): if let t = try? await task.value { await t.close() }
        default: break
        }
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}

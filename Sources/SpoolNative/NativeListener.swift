import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SpoolBroker
import SpoolProtocol
import SpoolSecurity
import SpoolTransport

/// The native protocol's listener (proto/, FRAMING.md): accepts connections and gives
/// each a frame decoder, the shared `TransportHandler` (frame deadline, outbound ledger,
/// read pausing, span writing) and a `ConnectionHandler` over the shared broker core.
/// With `NativeSecurityConfig.tls` a TLS handler comes first and fetched spans are copied
/// into buffers (a `FileRegion` cannot pass it); plaintext keeps `sendfile`.
///
/// ```swift
/// let listener = try await NativeListener.start(broker: broker, group: group)
/// print(listener.localAddress)
/// await listener.shutdown(drainSeconds: 10)
/// ```
public final class NativeListener: Sendable {
    /// The native protocol version this broker speaks.
    public static let protocolVersion: UInt32 = 1

    let channel: Channel
    let connections: ConnectionSet
    let broker: Broker

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress { channel.localAddress! }
    public var port: Int { channel.localAddress!.port! }

    // Every parameter type here must be public or `@usableFromInline` (see ConnectionSet):
    // Swift 6.3.1 crashes optimizing a caller's module otherwise.
    private init(channel: Channel, connections: ConnectionSet, broker: Broker) {
        self.channel = channel
        self.connections = connections
        self.broker = broker
    }

    /// Binds `config.host:config.port` and starts accepting, with TLS and authentication as
    /// `security` says (a bad certificate or key fails here).
    public static func start(broker: Broker, group: EventLoopGroup, security: NativeSecurityConfig = NativeSecurityConfig()) async throws -> NativeListener {
        let config = broker.config
        let serverContext = try security.tls?.makeServerContext()
        if security.authentication != .none && security.credentials == nil {
            throw SecurityError(.invalidCredential, "native authentication (\(security.authentication.rawValue)) needs a credential store")
        }
        let connections = ConnectionSet()
        let budgets = broker.budgets
        let acceptFailures = broker.events.metrics.listener(NativeCallMetrics.listener).acceptFailures
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // accept() failing with EMFILE/ENFILE (or out of memory) leaves the connection
                // in the backlog: without a pause the event loop would retry at once, forever.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptThrottle { acceptFailures.increment() })
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                guard let budget = budgets.admitConnection() else {
                    // Over TLS a cleartext GOAWAY would read as garbage: just closed.
                    if serverContext != nil { return channel.close() }
                    let status = SpoolStatusError(.resourceExhausted, "the broker has \(budgets.descriptors.maxConnections) connections open, its limit (max.connections); try again later")
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ConnectionRefuser(status))
                    }
                }
                channel.closeFuture.whenComplete { _ in budget.close() }
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let serverContext { try sync.addHandler(NIOSSLServerHandler(context: serverContext)) }
                    try sync.addHandler(IdleStateHandler(readTimeout: .seconds(config.idleTimeoutSeconds)))
                    try sync.addHandler(ByteToMessageHandler(BudgetedFrameDecoder(maxFrameBytes: config.maxFrameBytes, budget: budget)))
                    try sync.addHandler(TransportHandler(budget: budget, copiesSpans: serverContext != nil))
                    try sync.addHandler(ConnectionHandler(broker: broker, budget: budget, security: security))
                }
            }
        let channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        return NativeListener(channel: channel, connections: connections, broker: broker)
    }

    /// Stops accepting new connections.
    public func stopAccepting() async {
        try? await channel.close()
    }

    /// Graceful stop of the open connections: each answers the calls it has in flight
    /// (long polls at once), ends its streams with UNAVAILABLE, refuses new calls and says
    /// GOAWAY; what is still open after `drainSeconds` is closed.
    public func drain(seconds drainSeconds: Int64) async {
        let open = connections.all
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(ConnectionHandler.DrainEvent())
        }
        let deadline = ContinuousClock.now + .seconds(drainSeconds)
        for connection in open {
            while connection.isActive && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if connection.isActive { try? await connection.close() }
        }
    }
}

/// The open client connections of a listener, for a graceful shutdown.
// `@usableFromInline` works around a Swift 6.3.1 optimizer crash (signal 11 in
// DeadFunctionAndGlobalElimination, getBaseMethod) when a module calling
// `NativeListener.start` is built in release: default cross-module optimization
// deserializes NativeListener's vtable there, and the allocator entry of its init, whose
// signature names this internal type, comes back with a null declaration. A type in that
// signature must be public or `@usableFromInline`.
@usableFromInline
final class ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    var all: [Channel] { channels.withLockedValue { Array($0.values) } }
}

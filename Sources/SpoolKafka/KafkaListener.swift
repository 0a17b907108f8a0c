import SpoolRecords
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SpoolBroker
import SpoolSecurity
import SpoolTransport

/// The Kafka wire protocol listener: accepts connections from unchanged Kafka clients
/// and gives each a frame decoder, the shared `TransportHandler` (request deadline,
/// outbound ledger, read pausing, span writing) and a `KafkaConnectionHandler` over the
/// broker core.
///
/// ```swift
/// let kafka = try await KafkaListener.start(broker: broker, config: KafkaListenerConfig(), group: group)
/// print(kafka.localAddress)   // 127.0.0.1:9092
/// await kafka.stopAccepting(); await kafka.drain(seconds: 10)
/// ```
public final class KafkaListener: Sendable {
    let channel: Channel
    let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    private let advertised: NIOLockedValueBox<(host: String, port: Int)>

    /// What Metadata and FindCoordinator tell clients to connect to, as HOST:PORT.
    public var advertisedAddress: String {
        let (host, port) = advertised.withLockedValue { $0 }
        return "\(host):\(port)"
    }

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress { channel.localAddress! }
    public var port: Int { channel.localAddress!.port! }
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    public let securityProtocol: KafkaSecurityProtocol

    private init(channel: Channel, connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>,
                 advertised: NIOLockedValueBox<(host: String, port: Int)>, securityProtocol: KafkaSecurityProtocol) {
        self.securityProtocol = securityProtocol
        self.channel = channel
        self.connections = connections
        self.advertised = advertised
    }

    /// The host to advertise when none is configured: the bound one, except that a wildcard
    /// or `localhost` is no address a client can be sent to (KAFKA.md, pitfall 6), so those
    /// advertise 127.0.0.1 (set `advertisedHost` for clients on other machines).
    static func defaultAdvertisedHost(forBoundHost host: String) -> String {
        ["", "0.0.0.0", "::", "[::]", "localhost"].contains(host) ? "127.0.0.1" : host
    }

    /// Binds `config.host:config.port` and starts accepting.
    public static func start(broker: Broker, config: KafkaListenerConfig, group: EventLoopGroup) async throws -> KafkaListener {
        var config = config
        // TLS: one context for the listener (a bad certificate fails the start), and fetch
        // answers no larger than the connection's outbound budget, since they are copied.
        var tlsContext: NIOSSLContext?
        if config.securityProtocol.usesTLS {
            guard let tls = config.tls else {
                throw SecurityError(.tls, "a \(config.securityProtocol.rawValue) listener needs a certificate and a key")
            }
            tlsContext = try tls.makeServerContext()
            let bound = broker.budgets.config.outboundBytesPerConnectionMax
            config.fetchResponseBytesMax = min(config.fetchResponseBytesMax, bound)
            config.fetchSpanBytesMax = min(config.fetchSpanBytesMax, bound)
        }
        let sasl = config.securityProtocol.usesSASL
        guard !sasl || config.credentials != nil else {
            throw SecurityError(.invalidCredential, "a \(config.securityProtocol.rawValue) listener needs a credential store")
        }
        let logger = broker.events.logger
        let protocolName = config.securityProtocol.rawValue
        let frozen = config
        let serverContext = tlsContext
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        // The advertised port is only known after binding when the port is 0.
        let advertised = NIOLockedValueBox<(host: String, port: Int)>((
            config.advertisedHost ?? defaultAdvertisedHost(forBoundHost: config.host), config.advertisedPort ?? config.port))
        let budgets = broker.budgets
        let acceptFailures = broker.events.metrics.listener(KafkaCallMetrics.listener).acceptFailures
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // accept() out of descriptors: pause instead of retrying in a busy loop.
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptThrottle { acceptFailures.increment() }) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                // Over max.connections (shared with the native listener): closed at once, as
                // Kafka's broker does (the protocol has no frame to say why).
                guard let budget = budgets.admitConnection() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in budget.close() }
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                let (host, port) = advertised.withLockedValue { $0 }
                let config = frozen
                let apis = KafkaAPIs(
                    broker: broker, config: config, advertisedHost: host, advertisedPort: Int32(port), budget: budget)
                let client = channel.remoteAddress.map { "\($0)" } ?? "?"
                // Logged (rate-limited) and counted by the broker's events (issue 15 item 7).
                let events = broker.events
                let gate = sasl ? KafkaSaslGate(config: config, store: config.credentials!) { success, principal, mechanism, detail in
                    if success {
                        events.authenticationSucceeded(principal: principal, mechanism: mechanism, client: client, listener: protocolName)
                    } else {
                        events.authenticationFailed(user: principal.isEmpty ? nil : principal, mechanism: mechanism, client: client,
                                                    listener: protocolName, reason: detail)
                    }
                } : nil
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let serverContext { try sync.addHandler(NIOSSLServerHandler(context: serverContext)) }
                    try sync.addHandler(IdleStateHandler(readTimeout: .seconds(config.idleTimeoutSeconds)))
                    try sync.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: config.maxRequestBytes, budget: budget)))
                    try sync.addHandler(TransportHandler(budget: budget, copiesSpans: serverContext != nil))
                    try sync.addHandler(KafkaConnectionHandler(apis: apis, maxInFlight: config.maxInFlightPerConnection, sasl: gate))
                }
            }
        let channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        if config.advertisedPort == nil, let bound = channel.localAddress?.port {
            advertised.withLockedValue { $0.port = bound }
        }
        return KafkaListener(channel: channel, connections: connections, advertised: advertised, securityProtocol: config.securityProtocol)
    }

    /// Stops accepting new connections.
    public func stopAccepting() async {
        try? await channel.close()
    }

    /// Lets each open connection answer what it has read (long polls at once, as the broker
    /// wakes its waiters), then closes it; what is still open after `seconds` is closed.
    public func drain(seconds: Int64) async {
        let open = connections.withLockedValue { Array($0.values) }
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(KafkaConnectionHandler.DrainEvent())
        }
        // Each connection closes itself once it has answered; one still open at the deadline is closed.
        let deadline = NIODeadline.now() + .seconds(seconds)
        for connection in open {
            let forced = connection.eventLoop.scheduleTask(deadline: deadline) { connection.close(promise: nil) }
            try? await connection.closeFuture.get()
            forced.cancel()
        }
    }
}

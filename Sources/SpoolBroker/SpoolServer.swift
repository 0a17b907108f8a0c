import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolProtocol

/// The broker's network front: accepts connections and serves the protocol.
///
/// ```swift
/// let server = try await SpoolServer.start(config: BrokerConfig(dataDirectory: "data"))
/// print("listening on \(server.localAddress)")
/// try await server.shutdown()   // graceful: stop accepting, close, flush, clean marker
/// ```
public final class SpoolServer: Sendable {
    public let broker: Broker
    public let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let connections: ConnectionSet

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress { channel.localAddress! }
    public var port: Int { channel.localAddress!.port! }

    private init(broker: Broker, group: MultiThreadedEventLoopGroup, channel: Channel, connections: ConnectionSet) {
        self.broker = broker
        self.group = group
        self.channel = channel
        self.connections = connections
    }

    public static func start(config: BrokerConfig) async throws -> SpoolServer {
        let broker = try Broker(config: config)
        broker.storage.startBackgroundWork()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
        let connections = ConnectionSet()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .seconds(config.idleTimeoutSeconds)))
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: config.maxFrameBytes)))
                    try sync.addHandler(ConnectionHandler(broker: broker))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: config.host, port: config.port).get()
            return SpoolServer(broker: broker, group: group, channel: channel, connections: connections)
        } catch {
            try? broker.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Graceful stop: stop accepting; let every connection answer the calls it has in
    /// flight (long polls answer at once, streams end with UNAVAILABLE, new calls are
    /// refused) and close with GOAWAY; after `drainSeconds` close what is left; then
    /// flush storage and leave the clean marker.
    public func shutdown(drainSeconds: Int64 = 10) async throws {
        try? await channel.close()
        let open = connections.all
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(ConnectionHandler.DrainEvent())
        }
        broker.notifier.notifyAll()
        let deadline = ContinuousClock.now + .seconds(drainSeconds)
        for connection in open {
            while connection.isActive && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if connection.isActive { try? await connection.close() }
        }
        try await group.shutdownGracefully()
        try broker.close()
    }
}

/// The open client connections, for a graceful shutdown.
final class ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    var all: [Channel] { channels.withLockedValue { Array($0.values) } }
}

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

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress { channel.localAddress! }
    public var port: Int { channel.localAddress!.port! }

    private init(broker: Broker, group: MultiThreadedEventLoopGroup, channel: Channel) {
        self.broker = broker
        self.group = group
        self.channel = channel
    }

    public static func start(config: BrokerConfig) async throws -> SpoolServer {
        let broker = try Broker(config: config)
        broker.storage.startBackgroundWork()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .seconds(config.idleTimeoutSeconds)))
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: config.maxFrameBytes)))
                    try sync.addHandler(ConnectionHandler(broker: broker))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: config.host, port: config.port).get()
            return SpoolServer(broker: broker, group: group, channel: channel)
        } catch {
            try? broker.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops accepting, closes connections, flushes storage and leaves the clean marker.
    public func shutdown() async throws {
        try? await channel.close()
        try await group.shutdownGracefully()
        try broker.close()
    }
}

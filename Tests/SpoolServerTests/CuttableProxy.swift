import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP relay on 127.0.0.1 in front of a broker port, for tests that need a request to be
/// in flight at a known moment: `holdAnswers()` makes the current connections keep what the
/// broker sends back while requests still go through, and `cut()` then closes both sides of
/// those connections at once, so the client loses calls the broker has seen and answered.
/// Connections made after a cut (a client reconnecting) are relayed normally.
///
/// ```swift
/// let proxy = try await CuttableProxy(targetPort: broker.server.port)
/// let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: proxy.port)
/// proxy.holdAnswers()
/// // … wait until proxy.requestBytesWhileHolding > 0: a request is in flight …
/// proxy.cut()
/// ```
final class CuttableProxy: Sendable {
    private struct State {
        var pairs: [ObjectIdentifier: (client: Channel, upstream: Channel)] = [:]
        /// Pairs whose answers are being held.
        var held: Set<ObjectIdentifier> = []
        var requestBytesWhileHolding = 0
        var cuts = 0
    }

    private let group: MultiThreadedEventLoopGroup
    private let server: Channel
    private let state: NIOLockedValueBox<State>
    /// The port clients connect to.
    let port: Int

    init(targetPort: Int) async throws {
        let state = NIOLockedValueBox(State())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                ClientBootstrap(group: client.eventLoop)
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMap { upstream in
                        let id = ObjectIdentifier(client)
                        state.withLockedValue { $0.pairs[id] = (client, upstream) }
                        let toBroker = Relay(to: upstream, pair: id, state: state, direction: .request)
                        let toClient = Relay(to: client, pair: id, state: state, direction: .answer)
                        return upstream.pipeline.addHandler(toClient).flatMap {
                            client.pipeline.addHandler(toBroker)
                        }.flatMap {
                            client.setOption(.autoRead, value: true)
                        }
                    }
                    .flatMapError { _ in client.close() }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.state = state
        port = server.localAddress!.port!
    }

    /// From now on the connections open now relay requests to the broker but keep its answers.
    func holdAnswers() {
        state.withLockedValue { $0.held = Set($0.pairs.keys) }
    }

    /// Request bytes relayed to the broker on held connections (requests whose answers the client will not get).
    var requestBytesWhileHolding: Int { state.withLockedValue { $0.requestBytesWhileHolding } }

    var isHolding: Bool { state.withLockedValue { !$0.held.isEmpty } }

    /// Connections cut so far.
    var cuts: Int { state.withLockedValue { $0.cuts } }

    /// Closes both sides of every held connection, dropping the answers held.
    func cut() {
        let victims = state.withLockedValue { s -> [(client: Channel, upstream: Channel)] in
            let victims = s.held.compactMap { s.pairs.removeValue(forKey: $0) }
            s.cuts += victims.count
            s.held = []
            return victims
        }
        for pair in victims {
            pair.client.close(promise: nil)
            pair.upstream.close(promise: nil)
        }
    }

    func close() async throws {
        try await server.close()
        let pairs = state.withLockedValue { s in defer { s.pairs = [:] }; return Array(s.pairs.values) }
        for pair in pairs {
            pair.client.close(promise: nil)
            pair.upstream.close(promise: nil)
        }
        try await group.shutdownGracefully()
    }

    /// Forwards what one side reads to the other; an answer on a held pair is dropped.
    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        enum Direction { case request, answer }

        let partner: Channel
        let pair: ObjectIdentifier
        let state: NIOLockedValueBox<State>
        let direction: Direction

        init(to partner: Channel, pair: ObjectIdentifier, state: NIOLockedValueBox<State>, direction: Direction) {
            self.partner = partner
            self.pair = pair
            self.state = state
            self.direction = direction
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            let forward = state.withLockedValue { s -> Bool in
                guard s.held.contains(pair) else { return true }
                if direction == .request { s.requestBytesWhileHolding += bytes.readableBytes }
                return direction == .request
            }
            if forward { partner.writeAndFlush(bytes, promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner.close(promise: nil)
            state.withLockedValue { s in
                s.pairs[pair] = nil
                s.held.remove(pair)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}

import NIOCore
import NIOPosix
import SpoolBroker
import SpoolKafka
import SpoolNative

/// A whole Spool broker process in one object: the broker core and its listeners on one
/// event-loop group.
///
/// ```swift
/// let server = try await SpoolServer.start(config: BrokerConfig(dataDirectory: "data"))
/// print("listening on \(server.localAddress)")
/// try await server.shutdown()   // graceful: stop accepting, drain, flush, clean marker
/// ```
public final class SpoolServer: Sendable {
    public let broker: Broker
    public let group: MultiThreadedEventLoopGroup
    public let native: NativeListener
    /// The Kafka wire protocol listener, unless turned off (the first of `kafkaListeners`).
    public var kafka: KafkaListener? { kafkaListeners.first }
    /// Every Kafka listener (Kafka's `listeners=PLAINTEXT://…,SASL_SSL://…`), in the order configured.
    public let kafkaListeners: [KafkaListener]

    /// The native listener's bound address (useful with port 0).
    public var localAddress: SocketAddress { native.localAddress }
    /// The native listener's port.
    public var port: Int { native.port }

    private init(broker: Broker, group: MultiThreadedEventLoopGroup, native: NativeListener, kafka: [KafkaListener]) {
        self.broker = broker
        self.group = group
        self.native = native
        self.kafkaListeners = kafka
    }

    /// Opens the storage (recovering it if needed), starts background work and the listeners:
    /// the native one, and the Kafka one unless `kafka` is nil, then any `moreKafka` (other
    /// ports, other security protocols). `native` is the native listener's TLS and
    /// authentication. `events` receives metrics and logs.
    public static func start(
        config: BrokerConfig, kafka kafkaConfig: KafkaListenerConfig? = nil, moreKafka: [KafkaListenerConfig] = [],
        native nativeSecurity: NativeSecurityConfig = NativeSecurityConfig(), events: BrokerEvents = BrokerEvents()
    ) async throws -> SpoolServer {
        // A broker process uses what descriptors it may: the budgets are derived from them.
        DescriptorBudget.raiseProcessLimit()
        let broker = try Broker(config: config, events: events)
        broker.startBackgroundWork()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
        do {
            let native = try await NativeListener.start(broker: broker, group: group, security: nativeSecurity)
            var kafka: [KafkaListener] = []
            for listenerConfig in (kafkaConfig.map { [$0] } ?? []) + moreKafka {
                do {
                    kafka.append(try await KafkaListener.start(broker: broker, config: listenerConfig, group: group))
                } catch {
                    await native.stopAccepting()
                    for listener in kafka { await listener.stopAccepting() }
                    throw error
                }
            }
            return SpoolServer(broker: broker, group: group, native: native, kafka: kafka)
        } catch {
            try? await broker.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Graceful stop, in order: stop accepting; let every connection answer the calls it
    /// has in flight and say goodbye (closing what is left after `drainSeconds`); then
    /// append open batches, flush storage and leave the clean marker.
    public func shutdown(drainSeconds: Int64 = 10) async throws {
        let log = broker.events.logger
        log.info("shutdown: stop accepting")
        await native.stopAccepting()
        for listener in kafkaListeners { await listener.stopAccepting() }
        broker.wakeAllWaiters()
        // Held JoinGroup/SyncGroup calls are answered now rather than holding up the drain.
        broker.groups.shutdown()
        log.info("shutdown: draining connections", metadata: ["drain_seconds": "\(drainSeconds)"])
        await native.drain(seconds: drainSeconds)
        for listener in kafkaListeners { await listener.drain(seconds: drainSeconds) }
        try await group.shutdownGracefully()
        log.info("shutdown: flushing storage and writing the clean-shutdown marker")
        try await broker.close()
        log.info("shutdown: storage closed cleanly")
    }
}

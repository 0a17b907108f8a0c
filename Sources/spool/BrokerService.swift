import Logging
import ServiceLifecycle
import SpoolAdminHTTP
import SpoolBroker
import SpoolCluster
import SpoolKafka
import SpoolNative
import SpoolReplication
import SpoolServer
import Synchronization

/// The broker (storage, background work, listeners) as a swift-service-lifecycle
/// service: `run()` opens the storage (recovering it if needed), starts the listeners,
/// hands the admin listener its API, announces itself, and on graceful shutdown stops
/// in order: stop accepting, drain connections, flush storage, write the clean marker.
final class BrokerService: Service, Sendable {
    let config: BrokerConfig
    let kafka: [KafkaListenerConfig]
    /// The native listener's TLS and authentication.
    let native: NativeSecurityConfig
    let events: BrokerEvents
    let admin: AdminHTTPListener?
    /// Makes the cluster membership from the advertised native and Kafka addresses (nil: one broker alone).
    let join: Join?
    /// How this broker's followers reach and log in to leaders (cluster mode).
    let interBroker: InterBrokerSecurity
    /// The offsets topic's shape when this broker creates it (cluster mode).
    let offsetsTopic: (partitions: Int32, replicationFactor: Int)
    /// Called once the broker serves (the banner).
    let announce: @Sendable (SpoolServer, String?) -> Void
    private let state = Mutex(State.starting)

    enum State { case starting, serving, stopping }
    /// `kafkaListeners`: every Kafka listener's advertised address by security protocol.
    typealias Join = @Sendable (_ nativeAddress: String, _ kafkaAddress: String?, _ kafkaListeners: [String: String], _ broker: Broker) throws -> ClusterReplicaManager

    init(config: BrokerConfig, kafka: [KafkaListenerConfig], native: NativeSecurityConfig = NativeSecurityConfig(), events: BrokerEvents, admin: AdminHTTPListener?, join: Join? = nil,
         interBroker: InterBrokerSecurity = .plaintext,
         offsetsTopic: (partitions: Int32, replicationFactor: Int) = (Broker.offsetsTopicPartitionsDefault, Broker.offsetsTopicReplicationFactorDefault),
         announce: @escaping @Sendable (SpoolServer, String?) -> Void) {
        self.config = config
        self.kafka = kafka
        self.native = native
        self.events = events
        self.admin = admin
        self.join = join
        self.interBroker = interBroker
        self.offsetsTopic = offsetsTopic
        self.announce = announce
    }

    /// Ready: storage open, listeners accepting, not shutting down.
    var ready: Bool { state.withLock { $0 == .serving } }

    func run() async throws {
        let server = try await SpoolServer.start(config: config, kafka: kafka.first, moreKafka: Array(kafka.dropFirst()), native: native, events: events)
        var adminAddress: String?
        if let admin {
            var listeners = [ListenerView(name: native.tls == nil ? "native" : "native+tls", address: "\(server.localAddress.ipAddress ?? config.host):\(server.port)")]
            for kafka in server.kafkaListeners {
                let name = kafka.securityProtocol == .plaintext ? "kafka" : "kafka-\(kafka.securityProtocol.rawValue.lowercased())"
                listeners.append(ListenerView(name: name, address: "\(kafka.localAddress.ipAddress ?? "?"):\(kafka.localAddress.port ?? 0)"))
            }
            let bound = listeners
            admin.attach(AdminAPI(
                broker: server.broker,
                listeners: { [admin] in bound + (admin.currentAddress.map { [ListenerView(name: "admin-http", address: $0)] } ?? []) },
                ready: { [self] in ready },
                sample: { [server] in
                    await server.native.sampleBufferedOutboundBytes()
                    await server.kafka?.sampleBufferedOutboundBytes(into: server.broker.events.metrics)
                }))
            adminAddress = await admin.boundAddress()
        }
        // Cluster mode: register and campaign once the listeners accept (what is advertised answers).
        var membership: Task<Void, Never>?
        // Cluster mode: the follower fetcher follows the roles the cluster layer applies.
        var fetchers: ReplicaFetcherManager?
        if join != nil, let nodeId = config.nodeId {
            fetchers = ReplicaFetcherManager(broker: server.broker, nodeId: nodeId, security: interBroker)
            fetchers?.start()
        }
        if let join {
            let native = "\(server.localAddress.ipAddress ?? config.host):\(server.port)"
            let kafkaAddress = server.kafka.map { "\($0.advertisedAddress)" }
            // One address per protocol: the first listener of each kind (Kafka names listeners; Spool's are named by protocol).
            var kafkaListeners: [String: String] = [:]
            for listener in server.kafkaListeners where kafkaListeners[listener.securityProtocol.rawValue] == nil {
                kafkaListeners[listener.securityProtocol.rawValue] = "\(listener.advertisedAddress)"
            }
            let manager: ClusterReplicaManager
            do {
                manager = try join(native, kafkaAddress, kafkaListeners, server.broker)
            } catch {
                try await server.shutdown()
                throw error
            }
            // Topic administration and the core's replication calls go to the cluster from now on.
            server.broker.clusterAdministration = manager
            server.broker.replicationDelegate = manager
            server.broker.clusterSecurity = manager
            // Groups: coordinated by the leader of their offsets-topic partition from now on.
            server.broker.coordinateGroupsInCluster(partitions: offsetsTopic.partitions, replicationFactor: offsetsTopic.replicationFactor)
            membership = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await manager.member.run() }
                    group.addTask { await manager.run() }
                    await group.waitForAll()
                }
            }
        }
        state.withLock { $0 = .serving }
        announce(server, adminAddress)
        // Until SIGTERM/SIGINT (the service group turns them into a graceful shutdown).
        try? await gracefulShutdown()
        state.withLock { $0 = .stopping }
        // Leave the cluster first (revokes the lease: the others see this broker go at once).
        membership?.cancel()
        await membership?.value
        fetchers?.stop()
        try await server.shutdown()
    }
}

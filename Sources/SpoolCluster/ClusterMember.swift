import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import SpoolCoordination
import SpoolEtcd

/// A broker's membership of a cluster: keeps it registered in etcd under its lease
/// (`BrokerRegistration`), campaigns for controller under that lease (`ControllerElection`),
/// and logs and counts what happens (registration lost and back, controller changes).
///
/// Data replication is not built yet: membership changes nothing in how partitions are served.
///
/// Metrics: `spool_cluster_registered` and `spool_cluster_controller` (gauges, 1 or 0),
/// `spool_cluster_registration_losses_total`, `spool_cluster_controller_elections_total` (won by
/// this broker), `spool_cluster_controller_changes_total` (seen by this broker), and
/// `spool_etcd_request_seconds{operation}` (every etcd call, histogram).
///
/// ```swift
/// let member = try ClusterMember(configuration: configuration, logger: logger, factory: exporter)
/// let task = Task { await member.run() }   // cancel it to leave: the lease is revoked
/// ```
public final class ClusterMember: Sendable {
    /// What this broker currently knows of its membership.
    public struct State: Sendable, Hashable {
        /// The registration in force, nil while there is none.
        public var registration: BrokerRegistration.Registration?
        /// The controller as last learnt (nil before the first campaign answered or while unregistered).
        public var controller: ControllerElection.Controller?
        public var isController: Bool
        public var registrationLosses: Int
    }

    public let configuration: ClusterConfiguration
    public let client: EtcdClient
    private let keys: ClusterKeys
    private let logger: Logger
    private let registration: BrokerRegistration
    private let election: ControllerElection
    private let state = NIOLockedValueBox(State(registration: nil, controller: nil, isController: false, registrationLosses: 0))

    private let registeredGauge: Gauge
    private let controllerGauge: Gauge
    private let losses: Counter
    private let elections: Counter
    private let controllerChanges: Counter

    public init(configuration: ClusterConfiguration, logger: Logger, factory: any MetricsFactory) throws {
        self.configuration = configuration
        self.logger = logger
        keys = try ClusterKeys(clusterId: configuration.clusterId)
        var etcd = EtcdClientConfiguration(endpoints: configuration.etcdEndpoints)
        // A renewal must be able to fail over to another member well within one TTL.
        etcd.requestTimeout = .seconds(max(2, min(5, configuration.leaseTTLSeconds / 2)))
        etcd.attemptTimeout = .milliseconds(min(2000, max(500, configuration.leaseTTLSeconds * 1000 / 6)))
        let timers = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
        etcd.requestObserver = { operation, duration, _ in
            let timer = timers.withLockedValue { timers in
                if let timer = timers[operation] { return timer }
                let timer = CoreMetrics.Timer(label: "spool_etcd_request_seconds", dimensions: [("operation", operation)], factory: factory)
                timers[operation] = timer
                return timer
            }
            timer.recordNanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
        client = try EtcdClient(configuration: etcd)
        var registrationConfiguration = BrokerRegistration.Configuration()
        registrationConfiguration.ttlSeconds = configuration.leaseTTLSeconds
        registrationConfiguration.keepAliveInterval = configuration.keepAliveInterval
        registration = BrokerRegistration(
            client: client, keys: keys,
            record: BrokerRecord(nodeId: configuration.nodeId, nativeAddress: configuration.nativeAddress, kafkaAddress: configuration.kafkaAddress,
                                 kafkaListeners: configuration.kafkaListeners),
            configuration: registrationConfiguration)
        election = ControllerElection(client: client, keys: keys, nodeId: configuration.nodeId)
        registeredGauge = Gauge(label: "spool_cluster_registered", factory: factory)
        controllerGauge = Gauge(label: "spool_cluster_controller", factory: factory)
        losses = Counter(label: "spool_cluster_registration_losses_total", factory: factory)
        elections = Counter(label: "spool_cluster_controller_elections_total", factory: factory)
        controllerChanges = Counter(label: "spool_cluster_controller_changes_total", factory: factory)
        registeredGauge.record(0)
        controllerGauge.record(0)
    }

    /// What this broker knows now.
    public var current: State { state.withLockedValue { $0 } }

    /// The cluster as etcd holds it now.
    public func status() async throws -> ClusterStatus {
        try await ClusterStatus.read(client: client, clusterId: configuration.clusterId)
    }

    /// Stays a member until the task is cancelled; then revokes the lease (the broker's key and,
    /// if it was controller, the controller key go at once) and closes the etcd client.
    public func run() async {
        let meta: Logger.Metadata = ["node_id": "\(configuration.nodeId)", "cluster_id": "\(configuration.clusterId)"]
        logger.info("joining cluster", metadata: meta.merging([
            "etcd": "\(configuration.etcdEndpoints.map(\.description).joined(separator: ","))",
            "lease_ttl_seconds": "\(configuration.leaseTTLSeconds)"]) { a, _ in a })
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.registration.run() }
            group.addTask { await self.followElection() }
            group.addTask {
                var campaign: Task<Void, Never>?
                for await event in self.registration.events {
                    switch event {
                    case .registered(let registration):
                        campaign?.cancel()
                        self.state.withLockedValue { $0.registration = registration }
                        self.registeredGauge.record(1)
                        self.logger.info("registered in cluster", metadata: meta.merging([
                            "lease_id": "\(String(registration.leaseId, radix: 16))", "epoch": "\(registration.epoch)"]) { a, _ in a })
                        let election = self.election
                        campaign = Task {
                            do {
                                try await election.run(leaseId: registration.leaseId)
                            } catch {
                                // The lease is gone: the registration reports the loss and registers again.
                            }
                        }
                    case .lost(let registration, let reason):
                        campaign?.cancel()
                        campaign = nil
                        let wasController = self.state.withLockedValue { state -> Bool in
                            let was = state.isController
                            state.registration = nil
                            state.isController = false
                            state.controller = nil
                            state.registrationLosses += 1
                            return was
                        }
                        self.registeredGauge.record(0)
                        self.controllerGauge.record(0)
                        self.losses.increment()
                        self.logger.warning("cluster registration lost", metadata: meta.merging([
                            "lease_id": "\(String(registration.leaseId, radix: 16))", "epoch": "\(registration.epoch)",
                            "reason": "\(reason == .leaseNotFound ? "lease_not_found" : "keepalive_expired")",
                            "was_controller": "\(wasController)"]) { a, _ in a })
                    }
                }
                campaign?.cancel()
                await campaign?.value
            }
            await group.next() // the registration's run ends only when cancelled
            group.cancelAll()
        }
        state.withLockedValue { $0.registration = nil; $0.isController = false; $0.controller = nil }
        registeredGauge.record(0)
        controllerGauge.record(0)
        logger.info("left cluster", metadata: meta)
        client.shutdown()
    }

    private func followElection() async {
        let meta: Logger.Metadata = ["node_id": "\(configuration.nodeId)"]
        for await event in election.events {
            if Task.isCancelled { break }
            switch event {
            case .elected(let controller):
                let changed = state.withLockedValue { state -> Bool in
                    let changed = state.controller != controller
                    state.controller = controller
                    state.isController = true
                    return changed
                }
                controllerGauge.record(1)
                elections.increment()
                if changed { controllerChanges.increment() }
                logger.notice("elected cluster controller", metadata: meta.merging(["controller_epoch": "\(controller.epoch)"]) { a, _ in a })
            case .following(let controller):
                let changed = state.withLockedValue { state -> Bool in
                    let changed = state.controller != controller
                    state.controller = controller
                    state.isController = false
                    return changed
                }
                controllerGauge.record(0)
                if changed { controllerChanges.increment() }
                logger.info("cluster controller is another broker", metadata: meta.merging([
                    "controller": "\(controller.nodeId)", "controller_epoch": "\(controller.epoch)"]) { a, _ in a })
            case .deposed(let controller):
                state.withLockedValue { $0.isController = false; $0.controller = nil }
                controllerGauge.record(0)
                logger.warning("no longer cluster controller", metadata: meta.merging(["controller_epoch": "\(controller.epoch)"]) { a, _ in a })
            }
        }
    }
}

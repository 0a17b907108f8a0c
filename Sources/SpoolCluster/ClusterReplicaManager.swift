import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import SpoolBroker
import SpoolCoordination
import SpoolEtcd
import SpoolRecords
import SpoolSecurity

/// The cluster layer of one broker, on top of its `ClusterMember`:
///
/// - **Every broker** keeps a `ClusterSnapshot` of `/spool/<cluster-id>/` (a full read, then a
///   watch resumed from its revision), hosts the topics assigned to it (`Broker.hostTopic`),
///   applies every partition's state in order (`Broker.applyReplicaState`), deletes its copy of
///   topics the cluster deleted, and answers the core's `ReplicationDelegate` calls (ISR
///   proposals by compare-and-swap, other brokers' Kafka addresses).
/// - **Topic administration** (`ClusterAdministration`): whichever broker receives a create
///   assigns the replicas over the live brokers (`ReplicaAssignment`) and writes the topic record
///   with every partition's first state in one create-if-absent transaction; grow, alter and
///   delete are transactions too.
/// - **The controller** (the broker `ControllerElection` elected) re-decides leadership every
///   `controllerInterval` from the snapshot: a leader gone → the first live ISR member leads at
///   epoch + 1, dead brokers leave the ISR, no live ISR member → offline unless the topic allows
///   unclean election; every `preferredLeaderIntervalSeconds` (configured; 0 = off), the
///   preferred replica leads again when alive and in sync (`LeaderDecisions`); a reassignment
///   whose target replicas are all in the ISR completes (`ReassignmentDecisions.complete`). Each change is a compare-and-swap on the record's mod
///   revision: a conflict (someone else wrote, or the snapshot was stale) is re-decided on the
///   next round from the newer snapshot; with etcd out of quorum nothing changes.
///
/// - **Security** (`ClusterSecurityAdministration`, `CredentialReplication`): SCRAM credentials,
///   ACLs and client quotas changed through any broker are written under `security/`; every
///   broker replaces its replicated stores with what its snapshot holds whenever that changes.
///
/// - **On demand** (`ClusterOperations`): ElectLeaders and partition reassignments, answered by
///   any broker straight on etcd by compare-and-swap. A broker removed from every partition of a
///   topic deletes its copy.
///
/// Metrics: `spool_cluster_leader_elections_total` (leader changes this broker wrote: as
/// controller, or for ElectLeaders / a reassignment it answered),
/// `spool_cluster_reassigning_partitions` (gauge),
/// `spool_cluster_under_replicated_partitions`, `spool_cluster_offline_partitions` (gauges, as
/// this broker's snapshot shows them).
public final class ClusterReplicaManager: ClusterAdministration, ReplicationDelegate, Sendable {
    public let member: ClusterMember
    public let broker: Broker
    private let keys: ClusterKeys
    private let topicStore: TopicStore
    private let stateStore: PartitionStateStore
    private let logger: Logger
    private let snapshot: NIOLockedValueBox<ClusterSnapshot>
    private let loaded = NIOLockedValueBox(false)
    /// What this broker hosts: topic → partitions and stored overrides last passed to `hostTopic`.
    private let hosted = NIOLockedValueBox<[String: (partitions: Int32, overrides: [String: String])]>([:])
    /// The mod revision of each partition state last applied to the core.
    private let applied = NIOLockedValueBox<[TopicPartitionKey: Int64]>([:])
    private let elections: Counter
    /// The replicated credential store the listeners check logins against (nil: none).
    let credentials: CredentialStore?
    let securityStore: SecurityStore
    /// The snapshot's `securityVersion` last applied and the revision it was at.
    let securityApplied = NIOLockedValueBox<(version: Int, revision: Int64)>((-1, 0))
    private let underReplicated: Gauge
    private let offline: Gauge
    private let reassigning: Gauge
    /// Elections and reassignments on demand.
    public let operations: ClusterOperations

    /// How often the controller re-decides leadership.
    public static let controllerInterval: Duration = .milliseconds(250)
    /// How long a create waits for this broker's snapshot to show the new topic.
    public static let createVisibleWait: Duration = .seconds(3)
    /// How many times a grow or alter is retried after losing a compare-and-swap.
    public static let casAttempts = 5

    /// `credentials`: the listeners' store, replicated (`CredentialStore(replicated:)`), or nil.
    public init(member: ClusterMember, broker: Broker, credentials: CredentialStore? = nil, logger: Logger, factory: any MetricsFactory) throws {
        self.member = member
        self.credentials = credentials
        self.broker = broker
        self.logger = logger
        keys = try ClusterKeys(clusterId: member.configuration.clusterId)
        topicStore = TopicStore(client: member.client, keys: keys)
        stateStore = PartitionStateStore(client: member.client, keys: keys)
        securityStore = SecurityStore(client: member.client, keys: keys)
        snapshot = NIOLockedValueBox(ClusterSnapshot(keys: keys))
        elections = Counter(label: "spool_cluster_leader_elections_total", factory: factory)
        underReplicated = Gauge(label: "spool_cluster_under_replicated_partitions", factory: factory)
        offline = Gauge(label: "spool_cluster_offline_partitions", factory: factory)
        reassigning = Gauge(label: "spool_cluster_reassigning_partitions", factory: factory)
        let elections = self.elections
        operations = ClusterOperations(client: member.client, keys: keys, leaderChanged: { elections.increment() })
    }

    private var nodeId: Int32 { member.configuration.nodeId }

    /// The snapshot now.
    public var current: ClusterSnapshot { snapshot.withLockedValue { $0 } }

    /// Follows the cluster (and, while controller, leads it) until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.follow() }
            group.addTask { await self.control() }
            await group.waitForAll()
        }
    }

    // MARK: Following

    private func follow() async {
        while !Task.isCancelled {
            do {
                let range = try await member.client.range(.prefix(keys.root))
                snapshot.withLockedValue { $0.reset(range.kvs, revision: range.revision) }
                loaded.withLockedValue { $0 = true }
                await reconcile()
                for try await update in EtcdResumingWatch(client: member.client, keys: .prefix(keys.root), fromRevision: range.revision + 1) {
                    switch update {
                    case .events(let events, let revision):
                        snapshot.withLockedValue { $0.apply(events, revision: revision) }
                    case .resynced(let kvs, let revision):
                        snapshot.withLockedValue { $0.reset(kvs, revision: revision) }
                    }
                    await reconcile()
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("cluster watch failed; reading again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Brings the core in line with the snapshot: hosts assigned topics, applies changed
    /// partition states in partition order, deletes topics the cluster deleted.
    private func reconcile() async {
        let snap = current
        applySecurity(snap)
        let health = snap.health
        underReplicated.record(health.underReplicated)
        offline.record(health.offline)
        reassigning.record(snap.topics.values.reduce(0) { $0 + $1.record.reassignments.count })
        for name in snap.topics.keys.sorted() {
            guard let topic = snap.topics[name] else { continue }
            guard topic.record.assignment.contains(where: { $0.contains(nodeId) }) else { continue }
            let overrides = Broker.storedOverrides(topic.record.overrides)
            let known = hosted.withLockedValue { $0[name] }
            if known?.partitions != topic.record.partitions || known?.overrides != overrides {
                do {
                    try await broker.hostTopic(name, partitions: topic.record.partitions, overrides: overrides)
                    hosted.withLockedValue { $0[name] = (topic.record.partitions, overrides) }
                    logger.info("hosting topic", metadata: ["topic": "\(name)", "partitions": "\(topic.record.partitions)"])
                } catch {
                    logger.error("could not host topic", metadata: ["topic": "\(name)", "error": "\(error)"])
                    continue
                }
            }
            for (p, replicas) in topic.record.assignment.enumerated() {
                let key = TopicPartitionKey(topic: name, partition: Int32(p))
                guard let versioned = snap.states[key] else { continue }
                if applied.withLockedValue({ $0[key] }) == versioned.modRevision { continue }
                await apply(key, replicas: replicas, versioned)
            }
        }
        // Topics the cluster no longer has, or no longer assigns here (reassigned away): delete
        // this broker's copy, after its partitions' states stop their fetchers and leaders.
        let gone = hosted.withLockedValue { hosted in
            hosted.keys.filter { name in snap.topics[name].map { !$0.record.assignment.contains { $0.contains(nodeId) } } ?? true }
        }
        for name in gone {
            if let topic = snap.topics[name] {
                for (p, replicas) in topic.record.assignment.enumerated() {
                    guard let versioned = snap.states[TopicPartitionKey(topic: name, partition: Int32(p))] else { continue }
                    await apply(TopicPartitionKey(topic: name, partition: Int32(p)), replicas: replicas, versioned)
                }
            }
            do {
                try await broker.deleteHostedTopic(name)
                logger.info(snap.topics[name] == nil ? "deleted topic the cluster deleted" : "deleted topic reassigned away",
                            metadata: ["topic": "\(name)"])
            } catch let error as BrokerError where error.code == .unknownTopic {
            } catch {
                logger.error("could not delete topic", metadata: ["topic": "\(name)", "error": "\(error)"])
                continue
            }
            hosted.withLockedValue { $0[name] = nil }
            applied.withLockedValue { applied in applied = applied.filter { $0.key.topic != name } }
        }
    }

    private func apply(_ key: TopicPartitionKey, replicas: [Int32], _ versioned: VersionedPartitionState) async {
        let state = Self.replicaState(replicas: replicas, versioned.state)
        do {
            try await broker.applyReplicaState(TopicPartition(key.topic, key.partition), state)
            applied.withLockedValue { applied in
                if (applied[key] ?? 0) < versioned.modRevision { applied[key] = versioned.modRevision }
            }
        } catch {
            logger.error("could not apply partition state", metadata: ["partition": "\(key)", "state": "\(state)", "error": "\(error)"])
        }
    }

    static func replicaState(replicas: [Int32], _ state: PartitionState) -> ReplicaState {
        ReplicaState(replicas: replicas, leader: state.leader, leaderEpoch: max(0, state.leaderEpoch), isr: state.isr,
                     partitionEpoch: max(0, state.partitionEpoch))
    }

    // MARK: Controller

    private func control() async {
        var lastPreferred = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.controllerInterval)
            guard member.current.isController, member.current.registration != nil, loaded.withLockedValue({ $0 }) else {
                lastPreferred = .now
                continue
            }
            let interval = member.configuration.preferredLeaderIntervalSeconds
            let preferredDue = interval > 0 && ContinuousClock.now - lastPreferred >= .seconds(interval)
            if preferredDue { lastPreferred = .now }
            let snap = current
            let live = snap.liveBrokers
            for name in snap.topics.keys.sorted() {
                guard let topic = snap.topics[name] else { continue }
                for (p, replicas) in topic.record.assignment.enumerated() {
                    let key = TopicPartitionKey(topic: name, partition: Int32(p))
                    guard let versioned = snap.states[key] else { continue }
                    if let (record, state) = ReassignmentDecisions.complete(topic.record, partition: Int32(p), state: versioned.state, live: live),
                       member.current.isController {
                        await completeReassignment(topic, partition: Int32(p), record: record, from: versioned, to: state)
                        break  // the topic record changed: the rest of its partitions next round
                    }
                    var next = LeaderDecisions.onBrokersChanged(replicas: replicas, state: versioned.state, live: live,
                                                                unclean: topic.record.uncleanLeaderElection)
                    if next == nil && preferredDue {
                        next = LeaderDecisions.preferredLeader(replicas: replicas, state: versioned.state, live: live)
                    }
                    guard let next, !Task.isCancelled, member.current.isController else { continue }
                    do {
                        let outcome = try await stateStore.compareAndSwap(
                            topic: name, partition: Int32(p), expectedModRevision: versioned.modRevision, state: next)
                        if case .success = outcome {
                            if next.leader != versioned.state.leader { elections.increment() }
                            logger.notice("partition state changed", metadata: [
                                "partition": "\(key)", "from": "\(versioned.state)", "to": "\(next)", "live": "\(live.sorted())"])
                        }
                    } catch {
                        // etcd unreachable or without quorum: nothing changed; the next round re-decides.
                    }
                }
            }
        }
    }

    /// Writes a completed reassignment (record and state in one transaction); a conflict is
    /// re-decided next round.
    private func completeReassignment(_ topic: VersionedTopicRecord, partition: Int32, record: TopicRecord,
                                      from versioned: VersionedPartitionState, to state: PartitionState) async {
        do {
            if case .written = try await topicStore.update(topic.name, from: topic, to: record, states: [partition: (versioned, state)]) {
                if state.leader != versioned.state.leader { elections.increment() }
                logger.notice("reassignment completed", metadata: [
                    "partition": "\(topic.name)-\(partition)", "replicas": "\(record.assignment[Int(partition)])", "to": "\(state)"])
            }
        } catch {
            // etcd unreachable: the next round re-decides.
        }
    }

    // MARK: ReplicationDelegate

    public func proposeISR(_ tp: TopicPartition, from current: ReplicaState, to isr: [Int32]) async -> ReplicaState? {
        let key = TopicPartitionKey(topic: tp.topic, partition: tp.partition)
        let snap = self.current
        guard let versioned = snap.states[key], let assignment = snap.topics[tp.topic]?.record.assignment,
              assignment.indices.contains(Int(tp.partition)) else { return nil }
        let replicas = assignment[Int(tp.partition)]
        let known = Self.replicaState(replicas: replicas, versioned.state)
        guard versioned.state.partitionEpoch == current.partitionEpoch, versioned.state.leaderEpoch == current.leaderEpoch,
              versioned.state.leader == nodeId else { return known }
        let proposed = PartitionState(leader: nodeId, leaderEpoch: current.leaderEpoch, isr: isr, partitionEpoch: current.partitionEpoch + 1)
        do {
            switch try await stateStore.compareAndSwap(topic: tp.topic, partition: tp.partition, expectedModRevision: versioned.modRevision, state: proposed) {
            case .success(let revision):
                await apply(key, replicas: replicas, VersionedPartitionState(state: proposed, modRevision: revision))
                return Self.replicaState(replicas: replicas, proposed)
            case .conflict(let winner?):
                await apply(key, replicas: replicas, winner)
                return Self.replicaState(replicas: replicas, winner.state)
            case .conflict(nil):
                return nil
            }
        } catch {
            return nil
        }
    }

    public func kafkaAddress(of nodeId: Int32, securityProtocol: String) -> (host: String, port: Int)? {
        guard let record = current.brokers[nodeId], let address = record.kafkaAddress(for: securityProtocol) else { return nil }
        return Self.split(address).map { ($0.host, Int($0.port)) }
    }

    static func split(_ address: String) -> (host: String, port: Int32)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int32(address[address.index(after: colon)...]) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    // MARK: ClusterAdministration

    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int?, assignment manual: [[Int32]]?,
                            configs: [String: String]) async throws -> ClusterTopicDescription {
        guard Broker.isValidTopicName(name), (try? keys.topic(name)) != nil else {
            throw BrokerError(.invalidTopicName, "topic name '\(name)' is not valid")
        }
        let rf = manual?.first?.count ?? replicationFactor ?? member.configuration.defaultReplicationFactor
        guard rf >= 1, rf <= ClusterConfiguration.replicationFactorMax else {
            throw BrokerError(.invalidReplicationFactor, "replication factor \(rf) is not in 1...\(ClusterConfiguration.replicationFactorMax)")
        }
        let record = try await etcd {
            let assignment = try Self.placement(manual, brokers: try await self.registeredBrokers(), partitions: Int(partitions), replicationFactor: rf)
            let record = TopicRecord(assignment: assignment, overrides: configs)
            if case .conflict = try await self.topicStore.create(name, record) {
                throw BrokerError(.topicExists, "topic \(name) already exists")
            }
            return record
        }
        logger.info("topic created in cluster", metadata: ["topic": "\(name)", "partitions": "\(partitions)", "replication_factor": "\(rf)"])
        await waitUntilVisible { $0.topics[name] != nil }
        return describe(name, record: record, states: current.states)
    }

    /// The node ids registered in etcd now (live: their lease holds), read afresh.
    private func registeredBrokers() async throws -> [Int32] {
        try await member.client.range(.prefix(keys.brokersPrefix)).kvs.compactMap { Int32($0.key.dropFirst(keys.brokersPrefix.count)) }
    }

    /// Replicas for new partitions: `manual` checked against the `brokers` registered, or
    /// Kafka's placement over them.
    static func placement(_ manual: [[Int32]]?, brokers: [Int32], partitions: Int, replicationFactor: Int,
                          firstPartition: Int = 0) throws -> [[Int32]] {
        do {
            if let manual {
                try ReplicaAssignment.validate(manual, brokers: Set(brokers), replicasMax: ClusterConfiguration.replicationFactorMax)
                return manual
            }
            return try ReplicaAssignment.assignRandomly(brokers: brokers, partitions: partitions, replicationFactor: replicationFactor,
                                                        firstPartition: firstPartition)
        } catch .invalidAssignment(let why) {
            throw BrokerError(.invalidReplicaAssignment, why)
        } catch {
            throw BrokerError(.invalidReplicationFactor, "\(error)")
        }
    }

    public func deleteTopic(_ name: String) async throws {
        guard (try? keys.topic(name)) != nil else { throw BrokerError(.unknownTopic, "topic \(name) does not exist") }
        try await etcd {
            if case .conflict = try await self.topicStore.delete(name) { throw BrokerError(.unknownTopic, "topic \(name) does not exist") }
        }
        await waitUntilVisible { $0.topics[name] == nil }
    }

    public func addPartitions(topic: String, totalCount: Int32, assignment manual: [[Int32]]?) async throws {
        let registered: [Int32]? = manual == nil ? nil : try await etcd { try await self.registeredBrokers() }
        try await update(topic) { old in
            let current = old.partitions
            guard totalCount > current else {
                throw BrokerError(.invalidRequest, "topic \(topic) has \(current) partitions; the new count must be larger")
            }
            if let manual, manual.count != Int(totalCount - current) {
                throw BrokerError(.invalidReplicaAssignment, "\(manual.count) replica lists for \(totalCount - current) new partitions")
            }
            if let manual, let first = manual.first, first.count != old.replicationFactor {
                throw BrokerError(.invalidReplicaAssignment, "topic \(topic) has replication factor \(old.replicationFactor), the new partitions' replica lists \(first.count)")
            }
            var record = old
            record.assignment += try Self.placement(
                manual, brokers: registered ?? Array(self.current.liveBrokers), partitions: Int(totalCount - current),
                replicationFactor: old.replicationFactor, firstPartition: Int(current))
            return record
        }
        await waitUntilVisible { ($0.topics[topic]?.record.partitions ?? 0) >= totalCount }
    }

    public func replaceOverrides(_ name: String, validateOnly: Bool, _ change: @escaping @Sendable ([String: String]) -> [String: String]) async throws {
        if validateOnly {
            guard let old = try await etcd({ try await self.topicStore.read(name) }) else { throw BrokerError(.unknownTopic, "topic \(name) does not exist") }
            try broker.validateClusterTopicOverrides(change(old.record.overrides))
            return
        }
        let broker = self.broker
        try await update(name) { old in
            var record = old
            record.overrides = change(old.overrides)
            try broker.validateClusterTopicOverrides(record.overrides)
            return record
        }
    }

    public func describeTopic(_ name: String) async throws -> ClusterTopicDescription? {
        let snap = current
        return snap.topics[name].map { describe(name, record: $0.record, states: snap.states) }
    }

    public func topicNames() -> [String] { current.topics.keys.sorted() }

    public func electLeaders(_ type: ClusterElectionType, partitions: [TopicPartition]?) async -> [ClusterPartitionOutcome] {
        await operations.electLeaders(type == .unclean ? .unclean : .preferred, partitions: partitions)
    }

    public func alterReassignments(_ changes: [(partition: TopicPartition, replicas: [Int32]?)]) async -> [ClusterPartitionOutcome] {
        await operations.alterReassignments(changes)
    }

    public func listReassignments(_ partitions: [TopicPartition]?) -> [ClusterReassignmentStatus] {
        ClusterOperations.reassignments(in: current.topics, partitions)
    }

    public func metadataView() -> ClusterMetadataView {
        let snap = current
        let brokers = snap.brokers.values.sorted { $0.nodeId < $1.nodeId }.compactMap { record -> ClusterMetadataView.BrokerAddress? in
            guard let (host, port) = Self.split(record.kafkaAddress) else { return nil }
            let listeners = record.kafkaListeners.map { map in
                map.compactMapValues { Self.split($0).map { ClusterMetadataView.ListenerAddress(host: $0.host, port: $0.port) } }
            }
            return .init(nodeId: record.nodeId, host: host, port: port, nativeAddress: record.nativeAddress, listeners: listeners)
        }
        var topics: [String: ClusterTopicDescription] = [:]
        for (name, topic) in snap.topics { topics[name] = describe(name, record: topic.record, states: snap.states) }
        return ClusterMetadataView(brokers: brokers, controllerId: snap.controller?.nodeId ?? -1, topics: topics)
    }

    private func describe(_ name: String, record: TopicRecord, states: [TopicPartitionKey: VersionedPartitionState]) -> ClusterTopicDescription {
        ClusterTopicDescription(name: name, overrides: record.overrides, partitions: record.assignment.enumerated().map { p, replicas in
            let state = states[TopicPartitionKey(topic: name, partition: Int32(p))]?.state ?? TopicRecord.initialState(replicas: replicas)
            return Self.replicaState(replicas: replicas, state)
        })
    }

    /// Read, change, compare-and-swap; re-read and re-decide on a conflict.
    private func update(_ name: String, _ change: @escaping @Sendable (TopicRecord) throws -> TopicRecord) async throws {
        for _ in 0..<Self.casAttempts {
            let outcome = try await etcd { () async throws -> TopicStore.Outcome in
                guard let old = try await self.topicStore.read(name) else { throw BrokerError(.unknownTopic, "topic \(name) does not exist") }
                return try await self.topicStore.update(name, from: old, to: try change(old.record))
            }
            if case .written = outcome { return }
        }
        throw BrokerError(.clusterUnavailable, "topic \(name) kept changing under \(Self.casAttempts) attempts; try again")
    }

    /// Runs etcd calls, their failures as `BrokerError(.clusterUnavailable)`.
    private func etcd<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as BrokerError {
            throw error
        } catch {
            throw BrokerError(.clusterUnavailable, "the cluster's etcd did not answer: \(error)")
        }
    }

    private func waitUntilVisible(_ condition: (ClusterSnapshot) -> Bool) async {
        let deadline = ContinuousClock.now + Self.createVisibleWait
        while ContinuousClock.now < deadline, !condition(current) {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

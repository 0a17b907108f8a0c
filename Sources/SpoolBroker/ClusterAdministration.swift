import SpoolRecords

/// Topic administration in cluster mode: where a topic's existence, partitions, replication
/// factor and configs are decided (etcd, through `SpoolCluster`), instead of local storage.
/// Set on the broker (`Broker.clusterAdministration`) before the listeners start; every
/// listener's topic calls then go through it, from whichever broker received them. The cluster
/// layer hosts the data on the assigned brokers itself (`Broker.hostTopic`), so these calls
/// never touch local storage. Single-node brokers have none.
///
/// Errors are `BrokerError`s: `.topicExists`, `.unknownTopic`, `.invalidReplicationFactor`,
/// `.invalidReplicaAssignment`, `.invalidRequest`, `.invalidConfig`, `.clusterUnavailable`.
public protocol ClusterAdministration: Sendable {
    /// Creates the topic if no topic of that name exists (`replicationFactor` nil: the cluster's
    /// default), its replicas placed by the cluster or, with `assignment`, as given (one replica
    /// list per partition; `partitions` and `replicationFactor` follow from it; unknown brokers →
    /// `.invalidReplicaAssignment`). Returns once the record is written; replicas host it soon after.
    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int?, assignment: [[Int32]]?,
                     configs: [String: String]) async throws -> ClusterTopicDescription
    /// Deletes the topic everywhere.
    func deleteTopic(_ name: String) async throws
    /// Grows the topic to `totalCount` partitions, the new ones placed by the cluster or, with
    /// `assignment`, as given (one replica list per new partition, of the topic's replication factor).
    func addPartitions(topic: String, totalCount: Int32, assignment: [[Int32]]?) async throws
    /// Replaces the topic's config overrides by what `change` makes of the current ones.
    func replaceOverrides(_ name: String, validateOnly: Bool, _ change: @escaping @Sendable ([String: String]) -> [String: String]) async throws
    /// The topic as the cluster records it, nil if there is none.
    func describeTopic(_ name: String) async throws -> ClusterTopicDescription?
    /// Every topic the cluster records, by name.
    func topicNames() -> [String]
    /// What Kafka's Metadata and DescribeCluster show: live brokers, controller, every topic.
    func metadataView() -> ClusterMetadataView
    /// Kafka's ElectLeaders: elects leaders of `partitions` (nil: every partition; then only the
    /// partitions an election was attempted for are answered) by compare-and-swap in etcd.
    func electLeaders(_ type: ClusterElectionType, partitions: [TopicPartition]?) async -> [ClusterPartitionOutcome]
    /// Kafka's AlterPartitionReassignments: per partition, a new target replica list, or nil to
    /// cancel the reassignment in progress.
    func alterReassignments(_ changes: [(partition: TopicPartition, replicas: [Int32]?)]) async -> [ClusterPartitionOutcome]
    /// Kafka's ListPartitionReassignments: the reassignments in progress (of `partitions`, nil: all).
    func listReassignments(_ partitions: [TopicPartition]?) -> [ClusterReassignmentStatus]
}

/// The cluster as this broker last learnt it from etcd.
public struct ClusterMetadataView: Sendable {
    /// A live broker, the Kafka address it advertises and its native listener's address.
    public struct BrokerAddress: Sendable, Hashable {
        public var nodeId: Int32
        public var host: String
        public var port: Int32
        /// HOST:PORT of its native listener, as registered (Spool clients dial it).
        public var nativeAddress: String
        /// Its Kafka listeners' advertised addresses by security protocol (`PLAINTEXT`, `SSL`,
        /// `SASL_PLAINTEXT`, `SASL_SSL`); nil when it published only `host`/`port`.
        public var listeners: [String: ListenerAddress]?

        public init(nodeId: Int32, host: String, port: Int32, nativeAddress: String = "", listeners: [String: ListenerAddress]? = nil) {
            self.nodeId = nodeId
            self.host = host
            self.port = port
            self.nativeAddress = nativeAddress
            self.listeners = listeners
        }

        /// Where a client that came in on a `securityProtocol` listener reaches this broker
        /// (Kafka answers Metadata per listener): that listener's address, `host`/`port` when
        /// the broker published no listener map, nil when it has no such listener.
        public func address(for securityProtocol: String) -> ListenerAddress? {
            guard let listeners else { return ListenerAddress(host: host, port: port) }
            return listeners[securityProtocol]
        }
    }

    /// One advertised listener address.
    public struct ListenerAddress: Sendable, Hashable {
        public var host: String
        public var port: Int32
        public init(host: String, port: Int32) {
            self.host = host
            self.port = port
        }
    }

    /// A partition as clients are told it: the leader only if it is live (else -1), and
    /// the assigned replicas that are not live. Kafka's Metadata and the native one both use this.
    public struct PartitionRoute: Sendable, Hashable {
        /// The live leader's node id; -1 while there is none (clients: LEADER_NOT_AVAILABLE).
        public var leader: Int32
        /// Never negative.
        public var leaderEpoch: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
        public var offlineReplicas: [Int32]

        public init(leader: Int32, leaderEpoch: Int32, replicas: [Int32], isr: [Int32], offlineReplicas: [Int32]) {
            self.leader = leader
            self.leaderEpoch = leaderEpoch
            self.replicas = replicas
            self.isr = isr
            self.offlineReplicas = offlineReplicas
        }
    }

    /// The live brokers a client of a `securityProtocol` listener is told about, with that
    /// listener's address (a broker without one is left out, as Kafka leaves it out).
    public func brokers(for securityProtocol: String) -> [(nodeId: Int32, address: ListenerAddress)] {
        brokers.compactMap { b in b.address(for: securityProtocol).map { (b.nodeId, $0) } }
    }

    /// `state` as clients see it, given which brokers are live now.
    public func route(_ state: ReplicaState) -> PartitionRoute {
        let live = Set(brokers.map(\.nodeId))
        let leads = state.leader >= 0 && live.contains(state.leader)
        return PartitionRoute(leader: leads ? state.leader : -1, leaderEpoch: max(0, state.leaderEpoch), replicas: state.replicas,
                              isr: state.isr, offlineReplicas: state.replicas.filter { !live.contains($0) })
    }

    /// Live brokers, by node id.
    public var brokers: [BrokerAddress]
    /// The controller's node id, -1 while there is none.
    public var controllerId: Int32
    public var topics: [String: ClusterTopicDescription]

    public init(brokers: [BrokerAddress], controllerId: Int32, topics: [String: ClusterTopicDescription]) {
        self.brokers = brokers
        self.controllerId = controllerId
        self.topics = topics
    }
}

/// A topic as the cluster records it: its assignment, configs and each partition's leadership.
public struct ClusterTopicDescription: Sendable, Hashable {
    public var name: String
    public var overrides: [String: String]
    /// Per partition (index = partition number): replicas, leader, epochs, ISR.
    public var partitions: [ReplicaState]

    public init(name: String, overrides: [String: String], partitions: [ReplicaState]) {
        self.name = name
        self.overrides = overrides
        self.partitions = partitions
    }

    public var replicationFactor: Int { partitions.first?.replicas.count ?? 0 }
}

import SpoolCoordination
import SpoolEtcd

/// What a broker needs to join a cluster: who it is, where etcd is, what it advertises.
public struct ClusterConfiguration: Sendable {
    /// This broker's id in the cluster (0 or more, unique among the cluster's brokers).
    public var nodeId: Int32
    /// The cluster's name: its keys live under `/spool/<cluster-id>/` in etcd.
    public var clusterId: String
    /// etcd's client URLs.
    public var etcdEndpoints: [EtcdEndpoint]
    /// The registration lease's TTL, in seconds (Kafka's broker session timeout is 9 s).
    public var leaseTTLSeconds: Int64 = 9
    /// HOST:PORT other brokers and Spool clients dial.
    public var nativeAddress: String
    /// HOST:PORT Kafka clients are told about ("" without a Kafka listener).
    public var kafkaAddress: String
    /// Every Kafka listener's advertised HOST:PORT by security protocol (`BrokerRecord.kafkaListeners`).
    public var kafkaListeners: [String: String] = [:]
    /// Replication factor of topics created without one (Kafka's `default.replication.factor`).
    public var defaultReplicationFactor: Int = 1
    /// How often the controller gives leadership back to preferred replicas that are alive and
    /// in sync, in seconds; 0 turns it off (Kafka's `auto.leader.rebalance.enable` and
    /// `leader.imbalance.check.interval.seconds`, 300 s there; ours is short). ElectLeaders
    /// still elects on demand.
    public var preferredLeaderIntervalSeconds: Int = 5
    /// Accepted `preferredLeaderIntervalSeconds` (0 = off).
    public static let preferredLeaderIntervalSecondsRange: ClosedRange<Int> = 0...3600

    /// Largest replication factor accepted anywhere (Kafka's is an Int16; more is never useful).
    public static let replicationFactorMax = 32

    /// Largest accepted node id (Kafka's broker ids are non-negative Int32).
    public static let nodeIdMax: Int32 = Int32.max
    /// Accepted lease TTLs, in seconds (etcd's minimum with a 1 s election timeout is 2 s).
    public static let leaseTTLSecondsRange: ClosedRange<Int64> = 2...300

    public init(nodeId: Int32, clusterId: String, etcdEndpoints: [EtcdEndpoint], nativeAddress: String, kafkaAddress: String) {
        self.nodeId = nodeId
        self.clusterId = clusterId
        self.etcdEndpoints = etcdEndpoints
        self.nativeAddress = nativeAddress
        self.kafkaAddress = kafkaAddress
    }

    /// Whether `id` can name a cluster (`[A-Za-z0-9._-]+`: it is a key path segment).
    public static func isValidClusterId(_ id: String) -> Bool { (try? ClusterKeys(clusterId: id)) != nil }

    /// Renew every third of the TTL (etcd's own clients do the same), at least every second.
    var keepAliveInterval: Duration { .milliseconds(max(1000, leaseTTLSeconds * 1000 / 3)) }
}

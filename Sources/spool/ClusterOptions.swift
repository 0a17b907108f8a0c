import ArgumentParser
import SpoolBroker
import SpoolCluster
import SpoolEtcd

/// The broker's cluster-mode options (`--node-id`, `--etcd`, `--cluster-id`,
/// `--cluster-lease-ttl-seconds`, `--default-replication-factor`, `--replica-lag-time-max-ms`)
/// and their config-file keys. Without an etcd endpoint the broker
/// runs alone, as always.
struct ClusterOptions: ParsableArguments {
    @Option(help: "This broker's node id in the cluster (cluster mode; config: node.id).") var nodeId: Int32?
    @Option(help: "etcd client URLs, comma-separated, e.g. http://127.0.0.1:2379 (turns cluster mode on; config: etcd.endpoints).")
    var etcd: String?
    @Option(help: "The cluster's id: its keys live under /spool/<id>/ in etcd (config: cluster.id).") var clusterId: String?
    @Option(help: "Registration lease TTL in seconds, 2...300. Default: 9 (config: cluster.lease.ttl.seconds).")
    var clusterLeaseTtlSeconds: Int64?
    @Option(help: "Replication factor of topics created without one, 1...\(ClusterConfiguration.replicationFactorMax). Default: 1 (config: default.replication.factor).")
    var defaultReplicationFactor: Int?
    @Option(help: "A follower not caught up with the leader for this long leaves the ISR, \(Self.replicaLagRange.lowerBound)...\(Self.replicaLagRange.upperBound) ms. Default: 30000 (config: replica.lag.time.max.ms).")
    var replicaLagTimeMaxMs: Int64?
    @Option(help: "How often the controller gives leadership back to preferred replicas, seconds, 0 (off)...3600. Default: 5 (config: leader.imbalance.check.interval.seconds).")
    var leaderImbalanceCheckIntervalSeconds: Int?
    @Option(help: "Partitions of __consumer_offsets when this broker creates it, 1...1000. Default: \(Broker.offsetsTopicPartitionsDefault) (config: offsets.topic.num.partitions).")
    var offsetsTopicNumPartitions: Int32?
    @Option(help: "Replication factor of __consumer_offsets when this broker creates it (it waits until that many brokers are live), 1...\(ClusterConfiguration.replicationFactorMax). Default: \(Broker.offsetsTopicReplicationFactorDefault) (config: offsets.topic.replication.factor).")
    var offsetsTopicReplicationFactor: Int?

    static let keys = ["node.id", "etcd.endpoints", "cluster.id", "cluster.lease.ttl.seconds", "default.replication.factor",
                       "replica.lag.time.max.ms", "leader.imbalance.check.interval.seconds", "offsets.topic.num.partitions",
                       "offsets.topic.replication.factor"]
    static let offsetsTopicPartitionsRange: ClosedRange<Int32> = 1...1000
    static let replicaLagRange: ClosedRange<Int64> = 500...86_400_000

    /// The resolved cluster settings, or nil in single-broker mode.
    struct Settings: Sendable {
        var nodeId: Int32
        var clusterId: String
        var endpoints: [EtcdEndpoint]
        var leaseTTLSeconds: Int64
        var defaultReplicationFactor: Int
        var replicaLagTimeMaxMillis: Int64
        var preferredLeaderIntervalSeconds: Int
        var offsetsTopicPartitions: Int32
        var offsetsTopicReplicationFactor: Int
    }

    func resolve(file: [String: String]) throws -> Settings? {
        let etcd = self.etcd ?? file["etcd.endpoints"]
        let nodeIdText = nodeId.map(String.init) ?? file["node.id"]
        let clusterId = self.clusterId ?? file["cluster.id"]
        let ttlText = clusterLeaseTtlSeconds.map(String.init) ?? file["cluster.lease.ttl.seconds"]
        let rfText = defaultReplicationFactor.map(String.init) ?? file["default.replication.factor"]
        let lagText = replicaLagTimeMaxMs.map(String.init) ?? file["replica.lag.time.max.ms"]
        let imbalanceText = leaderImbalanceCheckIntervalSeconds.map(String.init) ?? file["leader.imbalance.check.interval.seconds"]
        let offsetsPartitionsText = offsetsTopicNumPartitions.map(String.init) ?? file["offsets.topic.num.partitions"]
        let offsetsFactorText = offsetsTopicReplicationFactor.map(String.init) ?? file["offsets.topic.replication.factor"]
        guard let etcd, !etcd.isEmpty else {
            if nodeIdText != nil || clusterId != nil || ttlText != nil || rfText != nil || lagText != nil || imbalanceText != nil
                || offsetsPartitionsText != nil || offsetsFactorText != nil {
                throw ValidationError("node.id, cluster.id, cluster.lease.ttl.seconds, default.replication.factor, replica.lag.time.max.ms, leader.imbalance.check.interval.seconds and offsets.topic.* need etcd.endpoints (--etcd URL[,URL...])")
            }
            return nil
        }
        guard let nodeIdText, let nodeId = Int32(nodeIdText), nodeId >= 0 else {
            throw ValidationError("cluster mode needs --node-id N (node.id), a non-negative integer (got '\(nodeIdText ?? "")')")
        }
        guard let clusterId, ClusterConfiguration.isValidClusterId(clusterId) else {
            throw ValidationError("cluster mode needs --cluster-id C (cluster.id), made of [A-Za-z0-9._-]")
        }
        var ttl: Int64 = 9
        if let ttlText {
            guard let v = Int64(ttlText), ClusterConfiguration.leaseTTLSecondsRange.contains(v) else {
                throw ValidationError("cluster.lease.ttl.seconds must be an integer in 2...300 (got '\(ttlText)')")
            }
            ttl = v
        }
        var rf = 1
        if let rfText {
            guard let v = Int(rfText), (1...ClusterConfiguration.replicationFactorMax).contains(v) else {
                throw ValidationError("default.replication.factor must be an integer in 1...\(ClusterConfiguration.replicationFactorMax) (got '\(rfText)')")
            }
            rf = v
        }
        var lag: Int64 = 30_000
        if let lagText {
            guard let v = Int64(lagText), Self.replicaLagRange.contains(v) else {
                throw ValidationError("replica.lag.time.max.ms must be an integer in \(Self.replicaLagRange.lowerBound)...\(Self.replicaLagRange.upperBound) (got '\(lagText)')")
            }
            lag = v
        }
        var imbalance = 5
        if let imbalanceText {
            guard let v = Int(imbalanceText), ClusterConfiguration.preferredLeaderIntervalSecondsRange.contains(v) else {
                throw ValidationError("leader.imbalance.check.interval.seconds must be an integer in 0...3600 (got '\(imbalanceText)')")
            }
            imbalance = v
        }
        var offsetsPartitions = Broker.offsetsTopicPartitionsDefault
        if let text = offsetsPartitionsText {
            guard let v = Int32(text), Self.offsetsTopicPartitionsRange.contains(v) else {
                throw ValidationError("offsets.topic.num.partitions must be an integer in \(Self.offsetsTopicPartitionsRange.lowerBound)...\(Self.offsetsTopicPartitionsRange.upperBound) (got '\(text)')")
            }
            offsetsPartitions = v
        }
        var offsetsFactor = Broker.offsetsTopicReplicationFactorDefault
        if let text = offsetsFactorText {
            guard let v = Int(text), (1...ClusterConfiguration.replicationFactorMax).contains(v) else {
                throw ValidationError("offsets.topic.replication.factor must be an integer in 1...\(ClusterConfiguration.replicationFactorMax) (got '\(text)')")
            }
            offsetsFactor = v
        }
        let endpoints: [EtcdEndpoint]
        do {
            endpoints = try EtcdEndpoint.list(etcd)
        } catch {
            throw ValidationError("etcd.endpoints must be http://HOST:PORT[,http://HOST:PORT...] (got '\(etcd)')")
        }
        guard !endpoints.isEmpty else { throw ValidationError("etcd.endpoints names no endpoint") }
        return Settings(nodeId: nodeId, clusterId: clusterId, endpoints: endpoints, leaseTTLSeconds: ttl, defaultReplicationFactor: rf,
                        replicaLagTimeMaxMillis: lag, preferredLeaderIntervalSeconds: imbalance,
                        offsetsTopicPartitions: offsetsPartitions, offsetsTopicReplicationFactor: offsetsFactor)
    }
}

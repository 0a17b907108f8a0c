import SpoolBroker

/// `GET /v1/cluster`: the cluster as this broker last learnt it from etcd (live brokers, the
/// controller, every partition's replicas, leader, epoch and ISR). Single-node: `clustered` false,
/// no brokers or partitions.
public struct ClusterView: Codable, Sendable {
    /// A live broker (registered under its etcd lease).
    public struct Broker: Codable, Sendable {
        public var nodeId: Int32
        /// HOST:PORT it advertises to Kafka clients.
        public var kafkaAddress: String
        /// HOST:PORT of its native listener, as registered ("" if it registered none).
        public var nativeAddress: String
    }

    /// One partition's replication state.
    public struct Partition: Codable, Sendable {
        public var topic: String
        public var partition: Int32
        public var replicas: [Int32]
        /// -1 while there is none.
        public var leader: Int32
        public var leaderEpoch: Int32
        public var isr: [Int32]
        /// Assigned replicas not in the ISR.
        public var outOfSyncReplicas: [Int32]
        /// Assigned replicas whose broker is not live.
        public var offlineReplicas: [Int32]
        public var underReplicated: Bool
        public var offline: Bool
    }

    public var clustered: Bool
    public var nodeId: Int32?
    public var controllerId: Int32
    public var brokers: [Broker]
    public var partitions: [Partition]
    public var underReplicatedPartitions: Int
    public var offlinePartitions: Int

    /// The view of `broker`'s cluster, with the partitions of topics `visible` accepts.
    static func make(_ broker: SpoolBroker.Broker, visible: (String) -> Bool = { _ in true }) -> ClusterView {
        guard let cluster = broker.clusterAdministration else {
            return ClusterView(clustered: false, nodeId: broker.config.nodeId, controllerId: -1, brokers: [], partitions: [],
                               underReplicatedPartitions: 0, offlinePartitions: 0)
        }
        let view = cluster.metadataView()
        let live = Set(view.brokers.map(\.nodeId))
        var partitions: [Partition] = []
        for name in view.topics.keys.sorted() where visible(name) {
            for (p, state) in view.topics[name]!.partitions.enumerated() {
                let inSync = Set(state.isr)
                partitions.append(Partition(
                    topic: name, partition: Int32(p), replicas: state.replicas, leader: state.leader, leaderEpoch: state.leaderEpoch,
                    isr: state.isr, outOfSyncReplicas: state.replicas.filter { !inSync.contains($0) },
                    offlineReplicas: state.replicas.filter { !live.contains($0) },
                    underReplicated: state.isr.count < state.replicas.count,
                    offline: state.leader < 0 || !live.contains(state.leader)))
            }
        }
        return ClusterView(
            clustered: true, nodeId: broker.config.nodeId, controllerId: view.controllerId,
            brokers: view.brokers.map { Broker(nodeId: $0.nodeId, kafkaAddress: "\($0.host):\($0.port)", nativeAddress: $0.nativeAddress) },
            partitions: partitions,
            underReplicatedPartitions: partitions.filter(\.underReplicated).count, offlinePartitions: partitions.filter(\.offline).count)
    }
}

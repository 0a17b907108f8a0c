import Foundation
import SpoolCoordination
import SpoolEtcd

/// A snapshot of a cluster as etcd holds it: the live brokers and the controller.
public struct ClusterStatus: Sendable, Codable, Hashable {
    /// One registered broker.
    public struct Broker: Sendable, Codable, Hashable {
        public var nodeId: Int32
        public var nativeAddress: String
        public var kafkaAddress: String
        /// The etcd lease the registration lives under.
        public var leaseId: Int64
        /// The registration's epoch (the revision that wrote it; larger for every new registration).
        public var epoch: Int64
    }

    /// The controller and its epoch.
    public struct Controller: Sendable, Codable, Hashable {
        public var nodeId: Int32
        public var epoch: Int64
    }

    /// One partition's assignment and leadership as etcd holds it.
    public struct Partition: Sendable, Codable, Hashable {
        public var topic: String
        public var partition: Int32
        public var replicas: [Int32]
        /// -1 while there is none.
        public var leader: Int32
        public var leaderEpoch: Int32
        public var isr: [Int32]
        public var partitionEpoch: Int32
        /// Fewer in sync than assigned.
        public var underReplicated: Bool { isr.count < replicas.count }
        /// No leader, or the leader is not a live broker.
        public var offline: Bool
    }

    public var clusterId: String
    /// Sorted by node id.
    public var brokers: [Broker]
    public var controller: Controller?
    /// Every partition of every topic, by topic then partition.
    public var partitions: [Partition]
    /// etcd's revision when read.
    public var revision: Int64

    public var underReplicatedPartitions: Int { partitions.filter(\.underReplicated).count }
    public var offlinePartitions: Int { partitions.filter(\.offline).count }

    enum CodingKeys: String, CodingKey { case clusterId, brokers, controller, partitions, revision }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: ExtraKeys.self)
        try c.encode(clusterId, forKey: .clusterId)
        try c.encode(brokers, forKey: .brokers)
        try c.encodeIfPresent(controller, forKey: .controller)
        try c.encode(partitions, forKey: .partitions)
        try c.encode(revision, forKey: .revision)
        try c.encode(underReplicatedPartitions, forKey: .underReplicatedPartitions)
        try c.encode(offlinePartitions, forKey: .offlinePartitions)
    }

    enum ExtraKeys: String, CodingKey { case clusterId, brokers, controller, partitions, revision, underReplicatedPartitions, offlinePartitions }

    /// Reads the brokers and the controller in one linearizable range over the cluster's root.
    public static func read(client: EtcdClient, clusterId: String) async throws -> ClusterStatus {
        let keys = try ClusterKeys(clusterId: clusterId)
        let brokersRange = try await client.range(.prefix(keys.brokersPrefix))
        var brokers: [Broker] = []
        for kv in brokersRange.kvs {
            let record = try JSONDecoder().decode(BrokerRecord.self, from: Data(kv.value))
            brokers.append(Broker(nodeId: record.nodeId, nativeAddress: record.nativeAddress, kafkaAddress: record.kafkaAddress,
                                  leaseId: kv.lease, epoch: kv.modRevision))
        }
        brokers.sort { $0.nodeId < $1.nodeId }
        let controllerRange = try await client.range(.key(keys.controller))
        let controller = try controllerRange.kvs.first.map { kv in
            Controller(nodeId: try JSONDecoder().decode(ControllerRecord.self, from: Data(kv.value)).nodeId, epoch: kv.createRevision)
        }
        let topics = try await TopicStore(client: client, keys: keys).readAll()
        let live = Set(brokers.map(\.nodeId))
        var partitions: [Partition] = []
        for name in topics.topics.keys.sorted() {
            for (p, replicas) in topics.topics[name]!.record.assignment.enumerated() {
                let state = topics.states[TopicPartitionKey(topic: name, partition: Int32(p))]?.state ?? TopicRecord.initialState(replicas: replicas)
                partitions.append(Partition(topic: name, partition: Int32(p), replicas: replicas, leader: state.leader,
                                            leaderEpoch: state.leaderEpoch, isr: state.isr, partitionEpoch: state.partitionEpoch,
                                            offline: state.leader < 0 || !live.contains(state.leader)))
            }
        }
        return ClusterStatus(clusterId: clusterId, brokers: brokers, controller: controller, partitions: partitions,
                             revision: max(brokersRange.revision, controllerRange.revision, topics.revision))
    }

    /// The text `spool cluster status` prints.
    public var text: String {
        var lines = ["cluster \(clusterId): \(brokers.count) broker\(brokers.count == 1 ? "" : "s"), controller \(controller.map { "\($0.nodeId) (epoch \($0.epoch))" } ?? "none")"]
        lines.append("NODE  NATIVE                 KAFKA                  LEASE             EPOCH  ROLE")
        for broker in brokers {
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
            let lease = String(broker.leaseId, radix: 16)
            lines.append(pad(String(broker.nodeId), 6) + pad(broker.nativeAddress, 23) + pad(broker.kafkaAddress.isEmpty ? "-" : broker.kafkaAddress, 23)
                         + pad(lease, 18) + pad(String(broker.epoch), 7) + (controller?.nodeId == broker.nodeId ? "controller" : "broker"))
        }
        let topicCount = Set(partitions.map(\.topic)).count
        lines.append("partitions: \(partitions.count) in \(topicCount) topic\(topicCount == 1 ? "" : "s"), \(underReplicatedPartitions) under-replicated, \(offlinePartitions) offline")
        for p in partitions where p.underReplicated || p.offline {
            lines.append("  \(p.topic)-\(p.partition): leader \(p.leader) epoch \(p.leaderEpoch) replicas \(p.replicas) isr \(p.isr)\(p.offline ? " OFFLINE" : " under-replicated")")
        }
        return lines.joined(separator: "\n")
    }
}

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

    public var clusterId: String
    /// Sorted by node id.
    public var brokers: [Broker]
    public var controller: Controller?
    /// etcd's revision when read.
    public var revision: Int64
    /// Data replication is not built yet: there are no replica sets to count as under-replicated
    /// or offline.
    public var replicationEnabled: Bool { false }

    enum CodingKeys: String, CodingKey { case clusterId, brokers, controller, revision }

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
        return ClusterStatus(clusterId: clusterId, brokers: brokers, controller: controller,
                             revision: max(brokersRange.revision, controllerRange.revision))
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
        lines.append("partitions: replication not yet enabled (each partition is served by the broker that holds it)")
        return lines.joined(separator: "\n")
    }
}

import SpoolEtcd

/// Where a Spool cluster keeps its state in etcd. Everything lives under `/spool/<cluster-id>/`
/// so that clusters can share one etcd:
///
/// | key | value | written by |
/// |---|---|---|
/// | `brokers/<node-id>` | `BrokerRecord` JSON, under the broker's lease | the broker (`BrokerRegistration`) |
/// | `controller` | `ControllerRecord` JSON, under the controller's lease | the elected broker (`ControllerElection`) |
/// | `topics/<topic>/partitions/<n>/state` | `PartitionState` JSON | compare-and-swap only (`PartitionStateStore`) |
public struct ClusterKeys: Sendable, Hashable {
    public let clusterId: String

    /// `clusterId` must be non-empty and made of `[A-Za-z0-9._-]` (it is a path segment).
    public init(clusterId: String) throws {
        guard Self.isSegment(clusterId) else {
            throw EtcdError(.invalidArgument, "cluster id '\(clusterId)' is not [A-Za-z0-9._-]+")
        }
        self.clusterId = clusterId
    }

    static func isSegment(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." && text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }

    /// `/spool/<cluster-id>/`
    public var root: String { "/spool/\(clusterId)/" }
    /// `/spool/<cluster-id>/brokers/`: one key per live broker.
    public var brokersPrefix: String { root + "brokers/" }
    public func broker(_ nodeId: Int32) -> String { brokersPrefix + String(nodeId) }
    /// `/spool/<cluster-id>/controller`
    public var controller: String { root + "controller" }
    /// `/spool/<cluster-id>/topics/`
    public var topicsPrefix: String { root + "topics/" }
    /// `/spool/<cluster-id>/topics/<topic>/partitions/`
    public func partitionsPrefix(topic: String) throws -> String {
        guard Self.isSegment(topic) else { throw EtcdError(.invalidArgument, "topic '\(topic)' is not [A-Za-z0-9._-]+") }
        return topicsPrefix + topic + "/partitions/"
    }
    /// `/spool/<cluster-id>/topics/<topic>/partitions/<n>/state`
    public func partitionState(topic: String, partition: Int32) throws -> String {
        guard partition >= 0 else { throw EtcdError(.invalidArgument, "partition \(partition) is negative") }
        return try partitionsPrefix(topic: topic) + String(partition) + "/state"
    }
}

import SpoolProtocol

/// What a broker's Metadata answer (method 26) says, as a client routes by it: the live
/// brokers' native addresses and each known partition's leader. A value: `BrokerRouter`
/// keeps the latest and replaces topics as newer answers name them.
public struct ClusterMetadata: Sendable, Equatable {
    /// One partition's leadership.
    public struct Partition: Sendable, Equatable {
        /// Node id; -1 while the partition has no live leader.
        public var leader: Int32
        public var leaderEpoch: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
    }

    /// The broker that answered.
    public var answeredBy: Int32
    /// False for a single broker (no cluster): it leads every partition.
    public var clustered: Bool
    /// Live brokers: node id → `HOST:PORT` of the native listener.
    public var brokers: [Int32: String]
    public var partitions: [TopicPartition: Partition]
    /// Partitions per known topic.
    public var partitionCounts: [String: Int32]

    public init(answeredBy: Int32 = -1, clustered: Bool = false, brokers: [Int32: String] = [:],
                partitions: [TopicPartition: Partition] = [:], partitionCounts: [String: Int32] = [:]) {
        self.answeredBy = answeredBy
        self.clustered = clustered
        self.brokers = brokers
        self.partitions = partitions
        self.partitionCounts = partitionCounts
    }

    /// The answer's content (topics the broker does not know are left out).
    public init(_ response: Spool_V1_MetadataResponse) {
        self.init(answeredBy: response.nodeID, clustered: response.clustered)
        for b in response.brokers { brokers[b.nodeID] = b.nativeAddress }
        for t in response.topics where t.code == .ok {
            partitionCounts[t.name] = Int32(t.partitions.count)
            for p in t.partitions {
                partitions[TopicPartition(t.name, p.partition)] = Partition(
                    leader: p.code == .ok ? p.leader : -1, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr)
            }
        }
    }

    /// The leader's node id, nil when it is not known or there is none now.
    public func leader(of tp: TopicPartition) -> Int32? {
        guard let p = partitions[tp], p.leader >= 0 else { return nil }
        return p.leader
    }

    /// This answer with `newer`'s brokers and the topics it names (each replaced whole);
    /// topics it does not name are kept.
    public func merged(with newer: ClusterMetadata) -> ClusterMetadata {
        var out = newer
        for (tp, p) in partitions where newer.partitionCounts[tp.topic] == nil { out.partitions[tp] = p }
        for (topic, n) in partitionCounts where newer.partitionCounts[topic] == nil { out.partitionCounts[topic] = n }
        return out
    }
}

/// `HOST:PORT` split at its last colon; nil when it is not one.
func splitHostPort(_ address: String) -> (host: String, port: Int)? {
    guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
          let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
    var host = String(address[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host, port)
}

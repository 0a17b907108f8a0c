/// A topic as the cluster knows it, `/spool/<cluster-id>/topics/<topic>` (JSON): its partitions'
/// replica assignment and its config overrides. Written create-if-absent by whichever broker
/// received the create, grown or altered by compare-and-swap on its mod revision (`TopicStore`).
public struct TopicRecord: Codable, Sendable, Hashable {
    /// Replica node ids per partition (index = partition number), the preferred leader first.
    public var assignment: [[Int32]]
    /// Topic config overrides (`retention.ms`, `min.insync.replicas`, `unclean.leader.election.enable`, …).
    public var overrides: [String: String]

    public init(assignment: [[Int32]], overrides: [String: String]) {
        self.assignment = assignment
        self.overrides = overrides
    }

    public var partitions: Int32 { Int32(assignment.count) }
    /// The replication factor of partition 0 (every partition has the same unless reassigned).
    public var replicationFactor: Int { assignment.first?.count ?? 0 }
    /// Whether the topic lets an out-of-sync replica lead when no ISR member is alive.
    public var uncleanLeaderElection: Bool { overrides["unclean.leader.election.enable"]?.lowercased() == "true" }

    /// The first state of a partition: its preferred replica leads at epoch 0, every replica in sync.
    public static func initialState(replicas: [Int32]) -> PartitionState {
        PartitionState(leader: replicas.first ?? -1, leaderEpoch: 0, isr: replicas, partitionEpoch: 0)
    }
}

/// A `TopicRecord` and the mod revision it was read at.
public struct VersionedTopicRecord: Sendable, Hashable {
    public var name: String
    public var record: TopicRecord
    public var modRevision: Int64

    public init(name: String, record: TopicRecord, modRevision: Int64) {
        self.name = name
        self.record = record
        self.modRevision = modRevision
    }
}

/// A topic as the cluster knows it, `/spool/<cluster-id>/topics/<topic>` (JSON): its partitions'
/// replica assignment, its config overrides, and reassignments in progress. Written
/// create-if-absent by whichever broker received the create, grown, altered or reassigned by
/// compare-and-swap on its mod revision (`TopicStore`).
public struct TopicRecord: Codable, Sendable, Hashable {
    /// Replica node ids per partition (index = partition number), the preferred leader first.
    /// While a partition is reassigned: its `PartitionReassignment.fullReplicas`.
    public var assignment: [[Int32]]
    /// Topic config overrides (`retention.ms`, `min.insync.replicas`, `unclean.leader.election.enable`, …).
    public var overrides: [String: String]
    /// Reassignments in progress, by partition number (as a string: a JSON object key). Absent
    /// in records written before reassignment existed, and when empty.
    public var reassignments: [String: PartitionReassignment]

    public init(assignment: [[Int32]], overrides: [String: String], reassignments: [String: PartitionReassignment] = [:]) {
        self.assignment = assignment
        self.overrides = overrides
        self.reassignments = reassignments
    }

    enum CodingKeys: String, CodingKey { case assignment, overrides, reassignments }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        assignment = try c.decode([[Int32]].self, forKey: .assignment)
        overrides = try c.decode([String: String].self, forKey: .overrides)
        reassignments = try c.decodeIfPresent([String: PartitionReassignment].self, forKey: .reassignments) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(assignment, forKey: .assignment)
        try c.encode(overrides, forKey: .overrides)
        if !reassignments.isEmpty { try c.encode(reassignments, forKey: .reassignments) }
    }

    public var partitions: Int32 { Int32(assignment.count) }
    /// The replication factor of partition 0 (every partition has the same unless reassigned).
    public var replicationFactor: Int { assignment.first?.count ?? 0 }
    /// Whether the topic lets an out-of-sync replica lead when no ISR member is alive.
    public var uncleanLeaderElection: Bool { overrides["unclean.leader.election.enable"]?.lowercased() == "true" }

    /// The reassignment in progress for `partition`, nil if none.
    public func reassignment(_ partition: Int32) -> PartitionReassignment? { reassignments[String(partition)] }

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

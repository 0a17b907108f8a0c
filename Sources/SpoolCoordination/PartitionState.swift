/// A partition's leadership record, `/spool/<cluster-id>/topics/<topic>/partitions/<n>/state`
/// (JSON). Changed only by compare-and-swap on the key's mod revision (`PartitionStateStore`);
/// every change raises `partitionEpoch`, every leader change raises `leaderEpoch`.
public struct PartitionState: Codable, Sendable, Hashable {
    /// The leader's node id; -1 while there is none.
    public var leader: Int32
    /// +1 per leader change; never negative (a negative epoch would turn fencing off).
    public var leaderEpoch: Int32
    /// The in-sync replicas' node ids (the leader among them while there is one).
    public var isr: [Int32]
    /// +1 per change of this record (leader or ISR).
    public var partitionEpoch: Int32

    public init(leader: Int32, leaderEpoch: Int32, isr: [Int32], partitionEpoch: Int32) {
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.isr = isr
        self.partitionEpoch = partitionEpoch
    }
}

/// A `PartitionState` and the mod revision it was read at (what a compare-and-swap compares).
public struct VersionedPartitionState: Sendable, Hashable {
    public var state: PartitionState
    public var modRevision: Int64

    public init(state: PartitionState, modRevision: Int64) {
        self.state = state
        self.modRevision = modRevision
    }
}

/// The outcome of a compare-and-swap on a partition's state.
public enum PartitionStateUpdate: Sendable, Hashable {
    /// Written; the record's new mod revision.
    case success(modRevision: Int64)
    /// Someone changed (or created, or deleted) the record first: what it holds now (nil if
    /// absent). Re-decide from it; never retry blindly.
    case conflict(current: VersionedPartitionState?)
}

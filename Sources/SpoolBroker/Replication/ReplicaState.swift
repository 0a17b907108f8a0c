import SpoolRecords

/// What the cluster has decided for one partition: which brokers hold it, which one leads,
/// at which leader epoch, and which replicas are in sync. The core's copy of the partition's
/// etcd record (`PartitionState` in SpoolCoordination) together with its replica assignment.
///
/// The cluster layer hands it to the core with `Broker.applyReplicaState(_:_:)` every time
/// it changes; the core acts on it (leads, follows, or holds the data and serves nothing).
public struct ReplicaState: Sendable, Hashable, CustomStringConvertible {
    /// Every assigned replica's node id, the preferred leader first.
    public var replicas: [Int32]
    /// The leader's node id; -1 while there is none.
    public var leader: Int32
    /// +1 per leader change; never negative.
    public var leaderEpoch: Int32
    /// The in-sync replicas (the leader among them while there is one).
    public var isr: [Int32]
    /// +1 per change of the partition's record (leader or ISR).
    public var partitionEpoch: Int32

    public init(replicas: [Int32], leader: Int32, leaderEpoch: Int32, isr: [Int32], partitionEpoch: Int32) {
        precondition(leaderEpoch >= 0 && partitionEpoch >= 0, "a replica state's epochs are never negative")
        self.replicas = replicas
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.isr = isr
        self.partitionEpoch = partitionEpoch
    }

    /// The state of a single-node broker's partitions: it holds, leads and is the ISR, at epoch 0.
    public static func soleReplica(_ nodeId: Int32) -> ReplicaState {
        ReplicaState(replicas: [nodeId], leader: nodeId, leaderEpoch: 0, isr: [nodeId], partitionEpoch: 0)
    }

    public var description: String {
        "leader \(leader) epoch \(leaderEpoch) isr \(isr) replicas \(replicas) partition epoch \(partitionEpoch)"
    }
}

/// What this broker is for one partition, by the last `ReplicaState` applied.
public enum ReplicaRole: Sendable, Hashable {
    /// It leads: it takes produce requests and serves consumers below the high watermark.
    case leader(epoch: Int32)
    /// It follows `leader` (fetching from it) and refuses produce and consumer fetches.
    case follower(leader: Int32, epoch: Int32)
    /// It holds the data (or will) but there is no leader it can follow (none elected, or
    /// this broker is not among the replicas any more).
    case offline(epoch: Int32)
}

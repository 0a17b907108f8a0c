/// The states of a consumer group in Kafka's classic group protocol, named as
/// Kafka names them (DescribeGroups and ListGroups report these strings).
///
/// ```
/// Empty ──join──▶ PreparingRebalance ──all known members rejoined, or rebalance timeout──▶ CompletingRebalance
///   ▲                  ▲                                                                       │ leader's SyncGroup
///   └── last member ───┴──────────── join / leave / session expiry ◀──── Stable ◀─────────────┘
/// ```
/// `Dead` is a group being deleted: every call on it answers `coordinatorNotAvailable`.
public enum GroupState: String, Hashable, Sendable, CaseIterable {
    /// No members; may still hold committed offsets.
    case empty = "Empty"
    /// A rebalance started: JoinGroup calls are held until every known member rejoined.
    case preparingRebalance = "PreparingRebalance"
    /// The generation is formed; waiting for the leader's assignment (SyncGroup).
    case completingRebalance = "CompletingRebalance"
    /// Every member has its assignment and heartbeats.
    case stable = "Stable"
    /// Deleted.
    case dead = "Dead"
}

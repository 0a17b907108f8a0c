/// Why an election asked for on demand (`LeaderDecisions.elect`) changes nothing; each is one
/// of Kafka's per-partition ElectLeaders errors.
public enum ElectionRefusal: Error, Sendable, Hashable {
    /// ELECTION_NOT_NEEDED (84): the preferred replica leads already (preferred), or a live
    /// leader exists (unclean).
    case notNeeded
    /// PREFERRED_LEADER_NOT_AVAILABLE (80): the preferred replica is not alive or not in sync.
    case preferredNotAvailable
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83): no live replica can lead.
    case eligibleNotAvailable
}

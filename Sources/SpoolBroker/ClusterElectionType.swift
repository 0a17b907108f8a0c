/// The election Kafka's ElectLeaders asks for (`ElectionType`: 0 preferred, 1 unclean).
public enum ClusterElectionType: Int8, Sendable, Hashable {
    /// The first assigned replica leads, if alive and in sync.
    case preferred = 0
    /// A partition without a live leader gets one, out of sync if need be.
    case unclean = 1
}

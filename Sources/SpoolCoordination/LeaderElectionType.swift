/// Which election Kafka's ElectLeaders asks for (its `ElectionType`: 0 preferred, 1 unclean).
public enum LeaderElectionType: Int8, Sendable, Hashable, CaseIterable {
    /// Give leadership to the first assigned replica, if it is alive and in sync.
    case preferred = 0
    /// Elect a leader for a partition that has none alive: a live ISR member if there is one,
    /// else any live replica (it may lack committed records).
    case unclean = 1
}

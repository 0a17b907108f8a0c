/// The controller's leadership decisions, pure functions of a partition's assignment, its
/// current state and the live brokers: what the controller writes (by compare-and-swap) when a
/// broker goes or comes back. nil means "leave the record as it is".
public enum LeaderDecisions {
    /// Elects a new leader when the current one is not alive (or there is none): the first
    /// replica in assignment order that is alive and in the ISR; failing that, with `unclean`,
    /// the first live replica (it may lack committed records); failing that, no leader (-1).
    /// Dead brokers leave the ISR (it never becomes empty: with no live member the last ISR is
    /// kept, as Kafka does, so a clean election can happen when one of them returns).
    /// Every change raises the partition epoch; a leader change raises the leader epoch.
    public static func onBrokersChanged(replicas: [Int32], state: PartitionState, live: Set<Int32>, unclean: Bool) -> PartitionState? {
        let leaderAlive = state.leader >= 0 && live.contains(state.leader)
        let liveISR = state.isr.filter { live.contains($0) }
        if leaderAlive {
            // The leader shrinks the ISR itself (lag); the controller drops only dead members.
            guard liveISR != state.isr, !liveISR.isEmpty else { return nil }
            return PartitionState(leader: state.leader, leaderEpoch: state.leaderEpoch, isr: liveISR, partitionEpoch: state.partitionEpoch + 1)
        }
        if let leader = replicas.first(where: { live.contains($0) && liveISR.contains($0) }) {
            return PartitionState(leader: leader, leaderEpoch: state.leaderEpoch + 1, isr: liveISR, partitionEpoch: state.partitionEpoch + 1)
        }
        if unclean, let leader = replicas.first(where: { live.contains($0) }) {
            return PartitionState(leader: leader, leaderEpoch: state.leaderEpoch + 1, isr: [leader], partitionEpoch: state.partitionEpoch + 1)
        }
        // Offline: no leader until an ISR member returns.
        if state.leader == -1 { return nil }
        return PartitionState(leader: -1, leaderEpoch: state.leaderEpoch + 1, isr: state.isr, partitionEpoch: state.partitionEpoch + 1)
    }

    /// Moves leadership back to the preferred replica (the first assigned) when it is alive and
    /// in the ISR and someone else (or nobody) leads.
    public static func preferredLeader(replicas: [Int32], state: PartitionState, live: Set<Int32>) -> PartitionState? {
        guard let preferred = replicas.first, state.leader != preferred, live.contains(preferred), state.isr.contains(preferred) else { return nil }
        return PartitionState(leader: preferred, leaderEpoch: state.leaderEpoch + 1, isr: state.isr, partitionEpoch: state.partitionEpoch + 1)
    }

    /// Whether a partition is under-replicated (fewer in sync than assigned) and offline (no leader).
    public static func health(replicas: [Int32], state: PartitionState) -> (underReplicated: Bool, offline: Bool) {
        (state.isr.count < replicas.count, state.leader < 0)
    }
}

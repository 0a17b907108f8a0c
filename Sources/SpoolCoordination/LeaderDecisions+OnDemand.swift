extension LeaderDecisions {
    /// The election Kafka's ElectLeaders asks for, as a pure function of the partition's
    /// assignment, state and the live brokers: the state to write, or why nothing changes.
    ///
    /// - `preferred`: the first assigned replica leads at leaderEpoch + 1 if it is alive and in
    ///   the ISR (else `.preferredNotAvailable`; `.notNeeded` when it leads already).
    /// - `unclean`: only for a partition without a live leader (else `.notNeeded`): a live ISR
    ///   member in assignment order if there is one (a clean election), else the first live
    ///   replica with the ISR reset to it (Kafka's unclean election), else `.eligibleNotAvailable`.
    public static func elect(_ type: LeaderElectionType, replicas: [Int32], state: PartitionState, live: Set<Int32>) -> Result<PartitionState, ElectionRefusal> {
        switch type {
        case .preferred:
            guard let preferred = replicas.first else { return .failure(.preferredNotAvailable) }
            if state.leader == preferred { return .failure(.notNeeded) }
            guard let next = preferredLeader(replicas: replicas, state: state, live: live) else { return .failure(.preferredNotAvailable) }
            return .success(next)
        case .unclean:
            if state.leader >= 0 && live.contains(state.leader) { return .failure(.notNeeded) }
            guard let next = onBrokersChanged(replicas: replicas, state: state, live: live, unclean: true), next.leader >= 0 else {
                return .failure(.eligibleNotAvailable)
            }
            return .success(next)
        }
    }

    /// The state once the assignment becomes `replicas` (a reassignment completing or cancelled):
    /// the ISR keeps only members of `replicas`; a leader outside them hands over to the first of
    /// `replicas` that is alive and in sync (leaderEpoch + 1), or to nobody (-1) if none is; the
    /// partition epoch rises.
    public static func restrict(_ state: PartitionState, to replicas: [Int32], live: Set<Int32>) -> PartitionState {
        let isr = state.isr.filter { replicas.contains($0) }
        var next = PartitionState(leader: state.leader, leaderEpoch: state.leaderEpoch, isr: isr, partitionEpoch: state.partitionEpoch + 1)
        if !replicas.contains(state.leader) || state.leader < 0 {
            next.leader = replicas.first { live.contains($0) && isr.contains($0) } ?? -1
            next.leaderEpoch += 1
        }
        if next.isr.isEmpty { next.isr = state.isr }  // offline: keep the last ISR, as `onBrokersChanged` does
        return next
    }
}

import SpoolRecords
import SpoolStorage

// The seam between the cluster layer and the core: the cluster layer says what each
// partition's replicas are and who leads (from etcd); the core holds the data, leads or
// follows. In single-node mode nothing here is called and every partition is
// `ReplicaState.soleReplica(nodeId)`.
extension Broker {
    /// Makes sure this broker holds `topic` with at least `partitions` partitions and these
    /// config overrides, in local storage only (the cluster layer has already decided the
    /// topic exists). Idempotent.
    public func hostTopic(_ topic: String, partitions: Int32, overrides: [String: String]) async throws {
        try await BrokerError.translateAsync {
            try await io.run { [storage] in
                if let definition = storage.topics.get(topic) {
                    if definition.partitions < partitions { _ = try storage.addPartitions(topic, totalCount: partitions) }
                    if definition.overrides != overrides { _ = try storage.replaceOverrides(topic, overrides) }
                } else {
                    _ = try storage.createTopic(topic, partitions: partitions, overrides: overrides)
                }
            }
        }
    }

    /// Acts on the cluster's latest decision for one partition this broker holds: lead it at
    /// `state.leaderEpoch`, follow `state.leader`, or serve nothing. States with an older
    /// partition epoch than one already applied are ignored. The topic must be hosted
    /// (`hostTopic`).
    public func applyReplicaState(_ tp: TopicPartition, _ state: ReplicaState) async throws {
        _ = try BrokerError.translate { try storage.partition(tp) }
        replicaStates.withLockedValue { states in
            if let known = states[tp], known.partitionEpoch > state.partitionEpoch { return }
            states[tp] = state
        }
    }

    /// The state last applied to `tp`, nil in single-node mode or before the first one.
    public func replicaState(_ tp: TopicPartition) -> ReplicaState? {
        replicaStates.withLockedValue { $0[tp] }
    }

    /// This broker's role for `tp`: leader of everything in single-node mode.
    public func role(_ tp: TopicPartition) -> ReplicaRole {
        guard let state = replicaState(tp), let node = config.nodeId else { return .leader(epoch: 0) }
        if state.leader == node { return .leader(epoch: state.leaderEpoch) }
        if state.leader >= 0 && state.replicas.contains(node) { return .follower(leader: state.leader, epoch: state.leaderEpoch) }
        return .offline(epoch: state.leaderEpoch)
    }
}

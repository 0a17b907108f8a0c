import SpoolRecords

/// What the core asks of the cluster layer while it replicates. `SpoolCluster` implements
/// it over etcd; a single-node broker has none (it leads everything, alone in the ISR).
///
/// The core never writes cluster state itself: it proposes, and acts on the `ReplicaState`
/// the cluster layer applies (`Broker.applyReplicaState`).
public protocol ReplicationDelegate: Sendable {
    /// Proposes a new ISR for a partition this broker leads at `current.leaderEpoch`: a
    /// compare-and-swap on the partition's record, refused if the record changed since
    /// `current` was applied. Returns the state in force afterwards (the proposal's when it
    /// won, the winner's when it lost), or nil when etcd could not be reached (the core
    /// proposes again later). The cluster layer also applies the returned state.
    func proposeISR(_ tp: TopicPartition, from current: ReplicaState, to isr: [Int32]) async -> ReplicaState?

    /// The address of a live broker's Kafka listener for `securityProtocol` (`PLAINTEXT`,
    /// `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`: where a follower fetches from), nil while that
    /// broker is not registered or has no such listener.
    func kafkaAddress(of nodeId: Int32, securityProtocol: String) -> (host: String, port: Int)?
}

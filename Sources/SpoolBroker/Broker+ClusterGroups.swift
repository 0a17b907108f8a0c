import Logging
import NIOConcurrencyHelpers

// Cluster mode's consumer groups: the coordinator of a group is the leader of its partition
// of `__consumer_offsets` (`ReplicatedGroupOffsets`).
extension Broker {
    /// Kafka's `offsets.topic.num.partitions` default is 50; Redpanda's 16, which Spool takes:
    /// fewer replicas to fetch on a small cluster.
    public static let offsetsTopicPartitionsDefault: Int32 = 16
    /// Kafka's `offsets.topic.replication.factor` default.
    public static let offsetsTopicReplicationFactorDefault = 3

    /// The replicated group ownership, once `coordinateGroupsInCluster` turned it on.
    public var groupOwnership: ReplicatedGroupOffsets? {
        groupOwnershipBox.withLockedValue { $0 }
    }

    /// Turns on cluster-mode groups (once, when the broker joins a cluster, before clients
    /// are served): from now on this broker coordinates only the groups whose offsets
    /// partition it leads, and commits replicate through the offsets topic.
    public func coordinateGroupsInCluster(partitions: Int32 = Broker.offsetsTopicPartitionsDefault,
                                          replicationFactor: Int = Broker.offsetsTopicReplicationFactorDefault) {
        let ownership = ReplicatedGroupOffsets(broker: self, partitions: partitions, replicationFactor: replicationFactor,
                                               logger: events.logger)
        groupOwnershipBox.withLockedValue { $0 = ownership }
        groups.ownership = ownership
    }

    /// The node id of `group`'s coordinator: this broker alone, or the leader of the group's
    /// offsets partition (`coordinatorNotAvailable` while there is none, or while the offsets
    /// topic is created).
    public func groupCoordinatorNode(for group: String) -> Result<Int32, GroupCoordinatorError> {
        guard let ownership = groupOwnership else { return .success(config.nodeId ?? 0) }
        return ownership.coordinatorNode(for: group)
    }
}

import SpoolRecords

/// What an election or reassignment did to one partition (`ClusterAdministration`): nothing
/// failed (`failure` nil), or one of Kafka's per-partition errors with a message.
public struct ClusterPartitionOutcome: Sendable, Hashable {
    /// The per-partition errors of ElectLeaders and AlterPartitionReassignments.
    public enum Failure: Sendable, Hashable {
        /// UNKNOWN_TOPIC_OR_PARTITION (3)
        case unknownTopicOrPartition
        /// ELECTION_NOT_NEEDED (84)
        case electionNotNeeded
        /// PREFERRED_LEADER_NOT_AVAILABLE (80)
        case preferredLeaderNotAvailable
        /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83)
        case eligibleLeadersNotAvailable
        /// INVALID_REPLICA_ASSIGNMENT (39)
        case invalidReplicaAssignment
        /// NO_REASSIGNMENT_IN_PROGRESS (85)
        case noReassignmentInProgress
        /// etcd did not answer, or the record kept changing (retriable; REQUEST_TIMED_OUT)
        case clusterUnavailable
    }

    public var partition: TopicPartition
    public var failure: Failure?
    public var message: String?

    public init(_ partition: TopicPartition, failure: Failure? = nil, message: String? = nil) {
        self.partition = partition
        self.failure = failure
        self.message = message
    }
}

/// Why a reassignment request (`ReassignmentDecisions`) is refused; each is one of Kafka's
/// per-partition AlterPartitionReassignments errors.
public enum ReassignmentRefusal: Error, Sendable, Hashable {
    /// UNKNOWN_TOPIC_OR_PARTITION (3).
    case unknownPartition
    /// INVALID_REPLICA_ASSIGNMENT (39): empty, duplicated, negative, too many, or not live brokers.
    case invalidAssignment(String)
    /// NO_REASSIGNMENT_IN_PROGRESS (85): a cancel for a partition that is not being reassigned.
    case noneInProgress
}

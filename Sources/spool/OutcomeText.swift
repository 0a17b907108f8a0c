import SpoolBroker

/// How `spool cluster elect-leaders` and `spool topic reassign` print per-partition outcomes.
enum OutcomeText {
    static func name(_ failure: ClusterPartitionOutcome.Failure) -> String {
        switch failure {
        case .unknownTopicOrPartition: "UNKNOWN_TOPIC_OR_PARTITION"
        case .electionNotNeeded: "ELECTION_NOT_NEEDED"
        case .preferredLeaderNotAvailable: "PREFERRED_LEADER_NOT_AVAILABLE"
        case .eligibleLeadersNotAvailable: "ELIGIBLE_LEADERS_NOT_AVAILABLE"
        case .invalidReplicaAssignment: "INVALID_REPLICA_ASSIGNMENT"
        case .noReassignmentInProgress: "NO_REASSIGNMENT_IN_PROGRESS"
        case .clusterUnavailable: "CLUSTER_UNAVAILABLE"
        }
    }

    static func lines(_ outcomes: [ClusterPartitionOutcome], success: String) -> String {
        if outcomes.isEmpty { return "no partition needed it" }
        return outcomes.map { o in
            guard let failure = o.failure else { return "\(o.partition): \(success)" }
            return "\(o.partition): \(name(failure))\(o.message.map { ": \($0)" } ?? "")"
        }.joined(separator: "\n")
    }
}

/// Partition reassignment (Kafka's KIP-455) as pure functions of the topic record, the
/// partition's state and the live brokers. Each returns the new record and state, which the
/// caller writes together in one transaction comparing both mod revisions (`TopicStore.update`).
///
/// 1. `start`: the target is recorded (`TopicRecord.reassignments`), the assignment becomes
///    original ∪ target (target first), the partition epoch rises so every broker re-applies it:
///    added replicas host the partition, fetch from the leader and join the ISR as any follower.
/// 2. `complete` (the controller, every round): once every target replica is in the ISR, the
///    assignment becomes the target, the ISR drops removed replicas, a leaving leader hands
///    over to the first live in-sync target replica. Removed brokers then delete their copy.
/// 3. `cancel`: the assignment goes back to the original replicas the same way.
public enum ReassignmentDecisions {
    /// Largest replica list accepted (the cluster's replication factor bound).
    public static let replicasMax = 32

    /// Starts (or replaces) a reassignment of `partition` to `target`. nil when nothing changes
    /// (the target is the assignment and nothing is in progress).
    public static func start(_ record: TopicRecord, partition: Int32, target: [Int32], state: PartitionState,
                             live: Set<Int32>) throws(ReassignmentRefusal) -> (TopicRecord, PartitionState)? {
        guard record.assignment.indices.contains(Int(partition)) else { throw .unknownPartition }
        guard !target.isEmpty else { throw .invalidAssignment("the replica list is empty") }
        guard target.count <= replicasMax else { throw .invalidAssignment("more than \(replicasMax) replicas") }
        guard Set(target).count == target.count else { throw .invalidAssignment("replicas \(target) name a broker twice") }
        guard target.allSatisfy({ $0 >= 0 }) else { throw .invalidAssignment("replicas \(target) include a negative broker id") }
        let missing = target.filter { !live.contains($0) }
        guard missing.isEmpty else { throw .invalidAssignment("brokers \(missing) are not alive") }
        let ongoing = record.reassignment(partition)
        let original = ongoing?.original ?? record.assignment[Int(partition)]
        if target == original {
            if ongoing == nil { return nil }
            return try cancel(record, partition: partition, state: state, live: live)
        }
        let reassignment = PartitionReassignment(original: original, target: target)
        var next = record
        next.assignment[Int(partition)] = reassignment.fullReplicas
        next.reassignments[String(partition)] = reassignment
        var nextState = LeaderDecisions.restrict(state, to: reassignment.fullReplicas, live: live)
        if nextState.leader == state.leader { nextState.leaderEpoch = state.leaderEpoch }
        return (next, nextState)
    }

    /// Cancels the reassignment of `partition`: the original replicas become the assignment again.
    public static func cancel(_ record: TopicRecord, partition: Int32, state: PartitionState,
                              live: Set<Int32>) throws(ReassignmentRefusal) -> (TopicRecord, PartitionState) {
        guard record.assignment.indices.contains(Int(partition)) else { throw .unknownPartition }
        guard let ongoing = record.reassignment(partition) else { throw .noneInProgress }
        return finish(record, partition: partition, replicas: ongoing.original, state: state, live: live)
    }

    /// Completes the reassignment of `partition` if every target replica is in the ISR (and a
    /// leader exists); nil while it must wait.
    public static func complete(_ record: TopicRecord, partition: Int32, state: PartitionState, live: Set<Int32>) -> (TopicRecord, PartitionState)? {
        guard let ongoing = record.reassignment(partition), state.leader >= 0,
              ongoing.target.allSatisfy({ state.isr.contains($0) }) else { return nil }
        return finish(record, partition: partition, replicas: ongoing.target, state: state, live: live)
    }

    private static func finish(_ record: TopicRecord, partition: Int32, replicas: [Int32], state: PartitionState,
                               live: Set<Int32>) -> (TopicRecord, PartitionState) {
        var next = record
        next.assignment[Int(partition)] = replicas
        next.reassignments[String(partition)] = nil
        return (next, LeaderDecisions.restrict(state, to: replicas, live: live))
    }
}

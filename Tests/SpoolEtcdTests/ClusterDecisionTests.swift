import SpoolCoordination
import Testing

/// The controller's pure decisions: replica placement and leader elections.
@Suite struct ClusterDecisionTests {
    @Test func assignmentSpreadsLeadersAndReplicas() throws {
        let brokers: [Int32] = [3, 1, 2]
        let assignment = try ReplicaAssignment.assign(brokers: brokers, partitions: 6, replicationFactor: 3, start: 0, shift: 0)
        #expect(assignment.count == 6)
        for replicas in assignment {
            #expect(replicas.count == 3)
            #expect(Set(replicas) == [1, 2, 3])
        }
        // Leaders round robin: each broker leads two of the six.
        let leaders = assignment.map { $0[0] }
        #expect(leaders == [1, 2, 3, 1, 2, 3])
        // The follower order shifts every n partitions (Kafka's rule), so followers do not pile up.
        #expect(assignment[0] == [1, 2, 3])
        #expect(assignment[3] == [1, 3, 2])
    }

    @Test func assignmentHonoursStartAndRandomStartStaysValid() throws {
        let a = try ReplicaAssignment.assign(brokers: [0, 1, 2, 3], partitions: 4, replicationFactor: 2, start: 2, shift: 1)
        #expect(a.map { $0[0] } == [2, 3, 0, 1])
        for replicas in a { #expect(Set(replicas).count == 2) }
        for seed in 0..<20 {
            let r = try ReplicaAssignment.assignRandomly(brokers: [5, 6, 7], partitions: 7, replicationFactor: 2)
            #expect(r.count == 7, "run \(seed)")
            for replicas in r { #expect(Set(replicas).count == 2 && replicas.allSatisfy { [5, 6, 7].contains($0) }) }
            let counts = Dictionary(grouping: r.map { $0[0] }, by: { $0 }).mapValues(\.count)
            #expect(counts.values.max()! - counts.values.min()! <= 1)
        }
        // Added partitions continue the round robin.
        let more = try ReplicaAssignment.assign(brokers: [0, 1, 2], partitions: 2, replicationFactor: 1, firstPartition: 3, start: 0, shift: 0)
        #expect(more == [[0], [1]])
    }

    @Test func assignmentRefusesTooLargeReplicationFactor() {
        #expect(throws: ReplicaAssignment.Failure.replicationFactorAboveBrokers(replicationFactor: 4, brokers: 3)) {
            _ = try ReplicaAssignment.assign(brokers: [1, 2, 3], partitions: 1, replicationFactor: 4, start: 0, shift: 0)
        }
        #expect(throws: ReplicaAssignment.Failure.self) {
            _ = try ReplicaAssignment.assign(brokers: [1], partitions: 1, replicationFactor: 0, start: 0, shift: 0)
        }
    }

    @Test func manualAssignmentsAreCheckedAgainstTheRegisteredBrokers() throws {
        try ReplicaAssignment.validate([[3, 1], [1, 2]], brokers: [1, 2, 3], replicasMax: 32)
        let refusals: [([[Int32]], String)] = [
            ([], "names no partition"), ([[1], []], "empty replica list"), ([[1, 2], [3]], "same number"),
            ([[2, 2]], "twice"), ([[1, 4]], "unknown brokers [4]"), ([[1, 2, 3]], "more than 2 replicas"),
        ]
        for (assignment, words) in refusals {
            #expect(throws: ReplicaAssignment.Failure.self, "\(assignment)") {
                try ReplicaAssignment.validate(assignment, brokers: [1, 2, 3], replicasMax: 2)
            }
            do {
                try ReplicaAssignment.validate(assignment, brokers: [1, 2, 3], replicasMax: 2)
            } catch {
                guard case .invalidAssignment(let why) = error else { Issue.record("\(assignment): \(error)"); continue }
                #expect(why.contains(words), "\(assignment): \(why)")
            }
        }
    }

    @Test func deadLeaderIsReplacedByTheFirstLiveISRMember() {
        let state = PartitionState(leader: 1, leaderEpoch: 4, isr: [1, 2, 3], partitionEpoch: 9)
        let next = LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: state, live: [2, 3], unclean: false)
        #expect(next == PartitionState(leader: 2, leaderEpoch: 5, isr: [2, 3], partitionEpoch: 10))
        // A live replica outside the ISR does not lead.
        let narrow = PartitionState(leader: 1, leaderEpoch: 4, isr: [1, 3], partitionEpoch: 9)
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: narrow, live: [2, 3], unclean: false)?.leader == 3)
    }

    @Test func deadFollowerLeavesTheISRAndNothingElseChanges() {
        let state = PartitionState(leader: 1, leaderEpoch: 4, isr: [1, 2, 3], partitionEpoch: 9)
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: state, live: [1, 2], unclean: false)
                == PartitionState(leader: 1, leaderEpoch: 4, isr: [1, 2], partitionEpoch: 10))
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: state, live: [1, 2, 3], unclean: false) == nil)
    }

    @Test func noLiveISRMemberMeansOfflineUnlessUnclean() {
        let state = PartitionState(leader: 1, leaderEpoch: 4, isr: [1], partitionEpoch: 9)
        let offline = LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: state, live: [2, 3], unclean: false)
        #expect(offline == PartitionState(leader: -1, leaderEpoch: 5, isr: [1], partitionEpoch: 10))
        // Already offline: nothing to write.
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: offline!, live: [2, 3], unclean: false) == nil)
        // The ISR member returns: it leads again.
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: offline!, live: [1, 2, 3], unclean: false)
                == PartitionState(leader: 1, leaderEpoch: 6, isr: [1], partitionEpoch: 11))
        // Unclean: a live out-of-sync replica leads, alone in the ISR.
        #expect(LeaderDecisions.onBrokersChanged(replicas: [1, 2, 3], state: state, live: [2, 3], unclean: true)
                == PartitionState(leader: 2, leaderEpoch: 5, isr: [2], partitionEpoch: 10))
    }

    @Test func preferredLeaderReturnsOnlyWhenAliveAndInSync() {
        let state = PartitionState(leader: 2, leaderEpoch: 5, isr: [2, 3], partitionEpoch: 10)
        #expect(LeaderDecisions.preferredLeader(replicas: [1, 2, 3], state: state, live: [1, 2, 3]) == nil) // 1 not in sync yet
        let caughtUp = PartitionState(leader: 2, leaderEpoch: 5, isr: [2, 3, 1], partitionEpoch: 11)
        #expect(LeaderDecisions.preferredLeader(replicas: [1, 2, 3], state: caughtUp, live: [1, 2, 3])
                == PartitionState(leader: 1, leaderEpoch: 6, isr: [2, 3, 1], partitionEpoch: 12))
        #expect(LeaderDecisions.preferredLeader(replicas: [1, 2, 3], state: caughtUp, live: [2, 3]) == nil)
        let led = PartitionState(leader: 1, leaderEpoch: 6, isr: [1, 2], partitionEpoch: 12)
        #expect(LeaderDecisions.preferredLeader(replicas: [1, 2, 3], state: led, live: [1, 2, 3]) == nil)
    }

    @Test func topicAndPartitionKeysParse() throws {
        let keys = try ClusterKeys(clusterId: "c1")
        #expect(try keys.topic("orders") == "/spool/c1/topics/orders")
        #expect(keys.topicName(ofRecordKey: "/spool/c1/topics/orders") == "orders")
        #expect(keys.topicName(ofRecordKey: "/spool/c1/topics/orders/partitions/0/state") == nil)
        let parsed = keys.partition(ofStateKey: try keys.partitionState(topic: "orders", partition: 12))
        #expect(parsed?.topic == "orders" && parsed?.partition == 12)
        #expect(keys.partition(ofStateKey: "/spool/c1/topics/orders") == nil)
        #expect(TopicRecord(assignment: [[1, 2]], overrides: ["unclean.leader.election.enable": "true"]).uncleanLeaderElection)
    }
}

import Foundation
import SpoolCoordination
import Testing

/// ElectLeaders' and reassignment's pure decisions (`LeaderDecisions.elect`, `ReassignmentDecisions`).
@Suite struct OnDemandDecisionTests {
    func state(_ leader: Int32, isr: [Int32], epoch: Int32 = 3, partitionEpoch: Int32 = 7) -> PartitionState {
        PartitionState(leader: leader, leaderEpoch: epoch, isr: isr, partitionEpoch: partitionEpoch)
    }

    @Test func preferredElection() {
        let replicas: [Int32] = [1, 2, 3]
        #expect(LeaderDecisions.elect(.preferred, replicas: replicas, state: state(1, isr: [1, 2, 3]), live: [1, 2, 3]) == .failure(.notNeeded))
        #expect(LeaderDecisions.elect(.preferred, replicas: replicas, state: state(2, isr: [2, 3]), live: [1, 2, 3]) == .failure(.preferredNotAvailable))
        #expect(LeaderDecisions.elect(.preferred, replicas: replicas, state: state(2, isr: [1, 2, 3]), live: [2, 3]) == .failure(.preferredNotAvailable))
        #expect(LeaderDecisions.elect(.preferred, replicas: replicas, state: state(2, isr: [2, 3, 1]), live: [1, 2, 3])
                == .success(state(1, isr: [2, 3, 1], epoch: 4, partitionEpoch: 8)))
    }

    @Test func uncleanElection() {
        let replicas: [Int32] = [1, 2, 3]
        #expect(LeaderDecisions.elect(.unclean, replicas: replicas, state: state(2, isr: [2]), live: [1, 2, 3]) == .failure(.notNeeded))
        // No live ISR member: an out-of-sync live replica leads alone.
        #expect(LeaderDecisions.elect(.unclean, replicas: replicas, state: state(-1, isr: [1]), live: [3])
                == .success(state(3, isr: [3], epoch: 4, partitionEpoch: 8)))
        // A live ISR member exists: it wins (a clean election).
        #expect(LeaderDecisions.elect(.unclean, replicas: replicas, state: state(1, isr: [1, 2]), live: [2, 3])
                == .success(state(2, isr: [2], epoch: 4, partitionEpoch: 8)))
        #expect(LeaderDecisions.elect(.unclean, replicas: replicas, state: state(-1, isr: [1]), live: []) == .failure(.eligibleNotAvailable))
    }

    @Test func reassignmentStartsWithTheUnionAndCompletesOnceTheTargetIsInSync() throws {
        let record = TopicRecord(assignment: [[1, 2]], overrides: [:])
        let s0 = state(1, isr: [1, 2])
        let (started, s1) = try #require(try ReassignmentDecisions.start(record, partition: 0, target: [2, 3], state: s0, live: [1, 2, 3]))
        #expect(started.assignment == [[2, 3, 1]])
        #expect(started.reassignment(0) == PartitionReassignment(original: [1, 2], target: [2, 3]))
        #expect(started.reassignment(0)?.adding == [3] && started.reassignment(0)?.removing == [1])
        #expect(s1 == state(1, isr: [1, 2], epoch: 3, partitionEpoch: 8), "same leader and epoch, partition epoch + 1")
        // The record survives JSON, and records without reassignments still decode.
        let decoded = try JSONDecoder().decode(TopicRecord.self, from: try JSONEncoder().encode(started))
        #expect(decoded == started)
        let old = try JSONDecoder().decode(TopicRecord.self, from: Data(#"{"assignment":[[1,2]],"overrides":{}}"#.utf8))
        #expect(old.reassignments.isEmpty)
        #expect(!String(decoding: try JSONEncoder().encode(old), as: UTF8.self).contains("reassignments"))
        // Not yet: 3 is not in sync.
        #expect(ReassignmentDecisions.complete(started, partition: 0, state: s1, live: [1, 2, 3]) == nil)
        // 3 joined: the target becomes the assignment, 1 leaves the ISR and hands leadership to 2.
        let s2 = state(1, isr: [1, 2, 3], epoch: 3, partitionEpoch: 9)
        let (done, s3) = try #require(ReassignmentDecisions.complete(started, partition: 0, state: s2, live: [1, 2, 3]))
        #expect(done.assignment == [[2, 3]] && done.reassignments.isEmpty)
        #expect(s3 == state(2, isr: [2, 3], epoch: 4, partitionEpoch: 10))
    }

    @Test func reassignmentRefusalsAndCancel() throws {
        let record = TopicRecord(assignment: [[1, 2]], overrides: [:])
        let s = state(1, isr: [1, 2])
        #expect(throws: ReassignmentRefusal.unknownPartition) { try ReassignmentDecisions.start(record, partition: 1, target: [1], state: s, live: [1, 2]) }
        #expect(throws: ReassignmentRefusal.self) { try ReassignmentDecisions.start(record, partition: 0, target: [], state: s, live: [1, 2]) }
        #expect(throws: ReassignmentRefusal.self) { try ReassignmentDecisions.start(record, partition: 0, target: [2, 2], state: s, live: [1, 2]) }
        #expect(throws: ReassignmentRefusal.self) { try ReassignmentDecisions.start(record, partition: 0, target: [2, 9], state: s, live: [1, 2]) }
        #expect(throws: ReassignmentRefusal.noneInProgress) { try ReassignmentDecisions.cancel(record, partition: 0, state: s, live: [1, 2]) }
        #expect(try ReassignmentDecisions.start(record, partition: 0, target: [1, 2], state: s, live: [1, 2]) == nil, "no change")
        // Cancel: back to the original replicas; an added replica leaves the ISR.
        let (started, s1) = try #require(try ReassignmentDecisions.start(record, partition: 0, target: [3], state: s, live: [1, 2, 3]))
        #expect(started.assignment == [[3, 1, 2]])
        let joined = state(s1.leader, isr: [1, 2, 3], epoch: s1.leaderEpoch, partitionEpoch: s1.partitionEpoch + 1)
        let (cancelled, s2) = try ReassignmentDecisions.cancel(started, partition: 0, state: joined, live: [1, 2, 3])
        #expect(cancelled == record)
        #expect(s2.leader == 1 && s2.isr == [1, 2] && s2.leaderEpoch == 3)
        // Asking for the original again cancels too.
        let again = try #require(try ReassignmentDecisions.start(started, partition: 0, target: [1, 2], state: joined, live: [1, 2, 3]))
        #expect(again.0 == record)
    }
}

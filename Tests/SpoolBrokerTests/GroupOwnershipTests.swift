import Foundation
import NIOCore
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Synchronization
import Testing

/// A `GroupOwnership` for tests: which groups are "ours", and what replication answers.
final class FakeOwnership: GroupOwnership {
    struct State {
        var owned: Set<String> = []
        var loading: Set<String> = []
        var refusal: GroupCoordinatorError?
        var replicated: [GroupOffsetsChange] = []
    }

    let state = Mutex(State())

    func checkCoordinates(_ group: String) throws(GroupCoordinatorError) {
        let (owned, loading) = state.withLock { ($0.owned.contains(group), $0.loading.contains(group)) }
        if loading { throw GroupCoordinatorError(.coordinatorLoadInProgress, "loading \(group)") }
        if !owned { throw GroupCoordinatorError(.notCoordinator, "not \(group)'s coordinator") }
    }

    func coordinates(_ group: String) -> Bool { state.withLock { $0.owned.contains(group) } }

    func replicate(_ change: GroupOffsetsChange, completion: @escaping @Sendable (Result<Void, GroupCoordinatorError>) -> Void) {
        let refusal = state.withLock { s -> GroupCoordinatorError? in
            if s.refusal == nil { s.replicated.append(change) }
            return s.refusal
        }
        completion(refusal.map { .failure($0) } ?? .success(()))
    }
}

@Suite("Group ownership in a cluster: placement, the offsets topic's records, the coordinator's checks")
struct GroupOwnershipTests {
    @Test("A group's partition is Kafka's: abs(Java String.hashCode) % partitions, over UTF-16 code units")
    func placementIsKafkas() {
        // Expected values computed with Java's hash (31 * h + UTF-16 unit, 32-bit wrapping).
        #expect(ReplicatedGroupOffsets.partition(for: "billing", partitions: 50) == 39)
        #expect(ReplicatedGroupOffsets.partition(for: "billing", partitions: 16) == 11)
        #expect(ReplicatedGroupOffsets.partition(for: "console-consumer-12345", partitions: 50) == 6)
        #expect(ReplicatedGroupOffsets.partition(for: "groupé", partitions: 50) == 42)
        #expect(ReplicatedGroupOffsets.partition(for: "😀grp", partitions: 50) == 36, "a surrogate pair counts as two units")
        #expect(ReplicatedGroupOffsets.partition(for: "", partitions: 7) == 0)
    }

    @Test("Commits are Kafka's offset-commit records (key v1, value v3); removals are tombstones; both decode back")
    func recordsRoundTrip() throws {
        let offsets: [TopicPartition: CommittedOffset] = [
            TopicPartition("orders", 0): CommittedOffset(offset: 42, metadata: "m", commitTimestamp: 1_700_000_000_123),
            TopicPartition("orders", 3): CommittedOffset(offset: 7, metadata: "", commitTimestamp: 1_700_000_000_456),
        ]
        let key = ReplicatedGroupOffsets.encodeKey("g1", TopicPartition("t", 2))
        #expect(key == [0, 1, 0, 2] + Array("g1".utf8) + [0, 1] + Array("t".utf8) + [0, 0, 0, 2], "key v1: version, group, topic, partition")
        let value = ReplicatedGroupOffsets.encodeValue(CommittedOffset(offset: 5, metadata: "x", commitTimestamp: 9))
        #expect(value == [0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 1] + Array("x".utf8) + [0, 0, 0, 0, 0, 0, 0, 9],
                "value v3: version, offset, leader epoch -1, metadata, commit timestamp")

        var batches = RecordBatchReader(try ReplicatedGroupOffsets.batch(.commit(group: "g1", offsets: offsets), nowMillis: 0))
        let batch = try #require(try batches.next())
        let records = try batch.records()
        #expect(records.count == 2)
        var decoded: [TopicPartition: CommittedOffset] = [:]
        for r in records {
            let rawKey = try #require(r.key)
            let rawValue = try #require(r.value)
            let (group, tp) = try #require(ReplicatedGroupOffsets.decodeKey(rawKey))
            #expect(group == "g1")
            decoded[tp] = ReplicatedGroupOffsets.decodeValue(rawValue)
        }
        #expect(decoded == offsets)

        var removals = RecordBatchReader(try ReplicatedGroupOffsets.batch(.remove(group: "g1", partitions: [TopicPartition("orders", 3)]), nowMillis: 5))
        let removal = try #require(try removals.next())
        let tombstones = try removal.records()
        #expect(tombstones.count == 1 && tombstones[0].value == nil)
        let tombstoneKey = try #require(tombstones[0].key)
        #expect(ReplicatedGroupOffsets.decodeKey(tombstoneKey)?.1 == TopicPartition("orders", 3))
        // Group-metadata keys (version 2) and damage are not offset commits.
        #expect(ReplicatedGroupOffsets.decodeKey(ByteBuffer(bytes: [0, 2, 0, 1, 0x67])) == nil)
        #expect(ReplicatedGroupOffsets.decodeKey(ByteBuffer(bytes: [0, 1, 0, 9, 0x67])) == nil)
        #expect(ReplicatedGroupOffsets.decodeValue(ByteBuffer(bytes: [0, 4])) == nil)
    }

    @Test("Every group call of a group coordinated elsewhere is NOT_COORDINATOR; while loading, COORDINATOR_LOAD_IN_PROGRESS")
    func callsCheckOwnership() async throws {
        let h = try CoordinatorHarness()
        let ownership = FakeOwnership()
        h.coordinator.ownership = ownership
        #expect(h.join(CoordinatorHarness.request("elsewhere")).errorCode == .notCoordinator)
        #expect(h.heartbeat("m", generation: 1, group: "elsewhere") == .notCoordinator)
        let commit = GroupCoordinator.CommitRequest(groupId: "elsewhere", offsets: [TopicPartition("events", 0): .init(offset: 1)])
        await #expect(throws: GroupCoordinatorError(.notCoordinator, "not elsewhere's coordinator")) { try await h.coordinator.commit(commit) }
        #expect(throws: GroupCoordinatorError(.notCoordinator, "not elsewhere's coordinator")) {
            try h.coordinator.fetchOffsets(groupId: "elsewhere", partitions: nil)
        }
        #expect(await h.coordinator.deleteGroups(["elsewhere"]).first?.error == .notCoordinator)
        ownership.state.withLock { $0.loading.insert("arriving") }
        #expect(h.join(CoordinatorHarness.request("arriving")).errorCode == .coordinatorLoadInProgress)
    }

    @Test("A commit is stored here only once replicated; a refused replication fails it and stores nothing")
    func commitReplicatesFirst() async throws {
        let h = try CoordinatorHarness()
        let ownership = FakeOwnership()
        ownership.state.withLock { $0.owned = ["mine", "other"] }
        h.coordinator.ownership = ownership
        let tp = TopicPartition("events", 1)
        _ = try await h.coordinator.commit(.init(groupId: "mine", offsets: [tp: .init(offset: 10, metadata: "a")]))
        #expect(try h.coordinator.fetchOffsets(groupId: "mine", partitions: [tp]).first?.offset == 10)
        let replicated = ownership.state.withLock { $0.replicated }
        #expect(replicated.count == 1 && replicated.first?.group == "mine")

        ownership.state.withLock { $0.refusal = GroupCoordinatorError(.coordinatorNotAvailable, "ISR too small") }
        await #expect(throws: GroupCoordinatorError(.coordinatorNotAvailable, "ISR too small")) {
            try await h.coordinator.commit(.init(groupId: "mine", offsets: [tp: .init(offset: 20)]))
        }
        #expect(try h.coordinator.fetchOffsets(groupId: "mine", partitions: [tp]).first?.offset == 10, "nothing stored on a refusal")
        ownership.state.withLock { $0.refusal = nil }

        // ListGroups shows only the groups coordinated here, even with offsets of others in the store.
        _ = try await h.coordinator.commit(.init(groupId: "other", offsets: [tp: .init(offset: 1)]))
        ownership.state.withLock { $0.owned = ["mine"] }
        #expect(try h.coordinator.listGroups().map(\.groupId) == ["mine"])

        // DeleteGroups replicates tombstones for the group's committed partitions before forgetting them.
        #expect(await h.coordinator.deleteGroups(["mine"]).first?.error == nil)
        #expect(ownership.state.withLock { $0.replicated.last } == .remove(group: "mine", partitions: [tp]))
        #expect(try h.coordinator.fetchOffsets(groupId: "mine", partitions: [tp]).first?.offset == -1)
    }

    @Test("Losing a partition's groups answers their held JoinGroups NOT_COORDINATOR; a load replaces their offsets")
    func unloadAndReplace() async throws {
        let h = try CoordinatorHarness()
        let ownership = FakeOwnership()
        ownership.state.withLock { $0.owned = ["g", "kept"] }
        h.coordinator.ownership = ownership
        let held = h.joinNew("g", client: "a")
        #expect(held.outcome.isPending, "held by the initial rebalance delay")
        h.coordinator.unload { $0 == "g" }
        #expect(held.outcome.errorCode == .notCoordinator)

        let tp0 = TopicPartition("events", 0), tp1 = TopicPartition("events", 1)
        _ = try await h.coordinator.commit(.init(groupId: "g", offsets: [tp0: .init(offset: 3), tp1: .init(offset: 4)]))
        _ = try await h.coordinator.commit(.init(groupId: "kept", offsets: [tp0: .init(offset: 8)]))
        // The log says: g has only tp1 at 40 now; "gone" had offsets here but none in the log.
        try await h.coordinator.replaceOffsets(matching: { $0 == "g" }, with: ["g": [tp1: CommittedOffset(offset: 40, commitTimestamp: 1)]])
        let g = try h.coordinator.fetchOffsets(groupId: "g", partitions: [tp0, tp1]).map(\.offset)
        #expect(g == [-1, 40])
        #expect(try h.coordinator.fetchOffsets(groupId: "kept", partitions: [tp0]).first?.offset == 8, "other groups untouched")
    }
}

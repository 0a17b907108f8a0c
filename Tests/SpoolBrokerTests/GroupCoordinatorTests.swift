@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

@Suite("Group coordinator: membership")
struct GroupCoordinatorMembershipTests {
    @Test("JoinGroup is a barrier: two members get one generation; a third makes everyone rejoin for the next")
    func barrier() throws {
        let h = try CoordinatorHarness()
        let a = h.joinNew(client: "a")
        let b = h.joinNew(client: "b")
        #expect(a.outcome.isPending && b.outcome.isPending, "held during the initial rebalance delay")
        h.scheduler.advance(by: h.coordinator.config.initialRebalanceDelayMillis - 1)
        #expect(a.outcome.isPending && b.outcome.isPending)
        h.scheduler.advance(by: 1)
        let ja = try #require(a.outcome.value)
        let jb = try #require(b.outcome.value)
        #expect(ja.generationId == 1 && jb.generationId == 1)
        #expect(ja.leaderId == jb.leaderId)
        #expect(ja.protocolName == "range")
        let leader = ja.isLeader ? ja : jb
        let follower = ja.isLeader ? jb : ja
        #expect(leader.members.map(\.memberId) == [a.memberId, b.memberId], "leader sees every member, in join order")
        #expect(leader.members.allSatisfy { $0.metadata == Array("events".utf8) })
        #expect(follower.members.isEmpty)
        h.sync(follower.memberId, generation: 1)
        h.sync(leader.memberId, generation: 1, assignments: [a.memberId: "0,1", b.memberId: "2,3"])
        #expect(try h.describe().state == .stable)

        // A third member: the group rebalances, and the barrier holds the newcomer until both old members rejoined.
        let c = h.joinNew(client: "c")
        #expect(try h.describe().state == .preparingRebalance)
        #expect(c.outcome.isPending)
        #expect(h.heartbeat(a.memberId, generation: 1) == .rebalanceInProgress)
        let ra = h.rejoin(a.memberId)
        h.scheduler.advance(by: 5_000)
        #expect(ra.isPending && c.outcome.isPending, "not answered before every known member rejoined")
        #expect(h.heartbeat(b.memberId, generation: 1) == .rebalanceInProgress)
        let rb = h.rejoin(b.memberId)
        let generations = [ra, rb, c.outcome].compactMap { $0.value?.generationId }
        #expect(generations == [2, 2, 2])
        #expect(ra.value?.leaderId == a.memberId, "the leader stays when it rejoins")
        #expect(ra.value?.members.count == 3)
    }

    @Test("Followers' SyncGroup waits for the leader's assignment; each member gets its own")
    func leaderFollowerSync() throws {
        let h = try CoordinatorHarness()
        let a = h.joinNew(client: "a")
        let b = h.joinNew(client: "b")
        h.scheduler.advance(by: h.coordinator.config.initialRebalanceDelayMillis)
        let ja = try #require(a.outcome.value)
        #expect(ja.isLeader)
        let followerSync = h.sync(b.memberId, generation: 1)
        #expect(followerSync.isPending)
        #expect(try h.describe().state == .completingRebalance)
        #expect(h.heartbeat(b.memberId, generation: 1) == nil, "heartbeats are fine while the leader assigns")
        let leaderSync = h.sync(a.memberId, generation: 1, assignments: [a.memberId: "events-0,events-1", b.memberId: "events-2,events-3"])
        #expect(leaderSync.value?.text == "events-0,events-1")
        #expect(followerSync.value?.text == "events-2,events-3")
        let described = try h.describe()
        #expect(described.state == .stable && described.protocolName == "range" && described.protocolType == "consumer")
        #expect(described.members.map(\.clientId) == ["a", "b"])
        #expect(described.members.map { String(decoding: $0.assignment, as: UTF8.self) } == ["events-0,events-1", "events-2,events-3"])
        // A late SyncGroup in a stable group gets the stored assignment at once; a stale generation is refused.
        #expect(h.sync(b.memberId, generation: 1).value?.text == "events-2,events-3")
        #expect(h.sync(b.memberId, generation: 0).errorCode == .illegalGeneration)
        #expect(h.sync("stranger", generation: 1).errorCode == .unknownMemberId)
    }

    @Test("A member that stops heartbeating is removed after its session timeout and its partitions move")
    func sessionExpiry() throws {
        let h = try CoordinatorHarness()
        let (leader, follower, generation) = try h.stableGroupOfTwo()
        // The leader heartbeats every 3 s; the follower is silent.
        for _ in 0..<3 {
            h.scheduler.advance(by: 3_000)
            #expect(h.heartbeat(leader, generation: generation) == nil)
        }
        #expect(try h.describe().members.count == 2, "9 s of silence is within the 10 s session")
        h.scheduler.advance(by: 1_000)
        #expect(try h.describe().members.map(\.memberId) == [leader])
        #expect(h.heartbeat(leader, generation: generation) == .rebalanceInProgress)
        #expect(h.heartbeat(follower, generation: generation) == .unknownMemberId)
        let rejoined = h.rejoin(leader)
        let result = try #require(rejoined.value, "the only member left rejoined: the barrier opens at once")
        #expect(result.generationId == generation + 1 && result.isLeader && result.members.map(\.memberId) == [leader])
        #expect(h.sync(leader, generation: result.generationId, assignments: [leader: "events-0,events-1,events-2,events-3"]).value?.text
                == "events-0,events-1,events-2,events-3")
    }

    @Test("A restarted static member takes its slot back without a rebalance; its old member id is fenced")
    func staticMemberRejoin() throws {
        let h = try CoordinatorHarness()
        let first = h.join(CoordinatorHarness.request(instance: "consumer-a", client: "a"))
        #expect(first.isPending, "static members get no MEMBER_ID_REQUIRED")
        let b = h.joinNew(client: "b")
        h.scheduler.advance(by: h.coordinator.config.initialRebalanceDelayMillis)
        let ja = try #require(first.value)
        let jb = try #require(b.outcome.value)
        #expect(ja.isLeader)
        h.sync(jb.memberId, generation: 1)
        h.sync(ja.memberId, generation: 1, instance: "consumer-a", assignments: [ja.memberId: "0,1", jb.memberId: "2,3"])

        // The process behind consumer-a restarts: no member id, same instance id.
        let again = h.join(CoordinatorHarness.request(instance: "consumer-a", client: "a"))
        let rejoined = try #require(again.value, "answered at once: no rebalance")
        #expect(rejoined.generationId == 1)
        #expect(rejoined.memberId != ja.memberId)
        #expect(!rejoined.isLeader, "told the old leader id, so it does not compute an assignment a stable group would not use")
        #expect(try h.describe().state == .stable)
        #expect(h.sync(rejoined.memberId, generation: 1, instance: "consumer-a").value?.text == "0,1", "the old assignment")
        #expect(h.heartbeat(jb.memberId, generation: 1) == nil, "the other member sees no rebalance")
        #expect(h.heartbeat(ja.memberId, generation: 1, instance: "consumer-a") == .fencedInstanceId)
        #expect(h.heartbeat(rejoined.memberId, generation: 1, instance: "consumer-a") == nil)
        // The slot's new id leads the next rebalance.
        #expect(try h.describe().leaderId == rejoined.memberId)
    }

    @Test("A rejoin is never answered before the others rejoined, so members do not rejoin forever")
    func noRejoinLoop() throws {
        let h = try CoordinatorHarness()
        let (leader, follower, generation) = try h.stableGroupOfTwo()
        // The follower changes its subscription: it rejoins with new metadata.
        let changed = h.rejoin(follower, protocols: [("range", "events,audit")])
        #expect(changed.isPending, "held at the barrier, not answered with the old generation")
        h.scheduler.advance(by: 1_000)
        #expect(changed.isPending)
        #expect(h.heartbeat(leader, generation: generation) == .rebalanceInProgress)
        let leaderRejoin = h.rejoin(leader)
        let jl = try #require(leaderRejoin.value)
        let jf = try #require(changed.value)
        #expect(jl.generationId == generation + 1 && jf.generationId == generation + 1)
        #expect(jl.members.first { $0.memberId == follower }?.metadata == Array("events,audit".utf8))
        let fs = h.sync(follower, generation: jf.generationId)
        h.sync(leader, generation: jl.generationId, assignments: [leader: "0,1", follower: "2,3"])
        #expect(fs.value?.text == "2,3")
        // From here on every heartbeat is plain success: no member is sent back to rejoin.
        for _ in 0..<20 {
            h.scheduler.advance(by: 3_000)
            #expect(h.heartbeat(leader, generation: jl.generationId) == nil)
            #expect(h.heartbeat(follower, generation: jf.generationId) == nil)
        }
        let described = try h.describe()
        #expect(described.state == .stable && described.generationId == generation + 1)
    }

    @Test("When the rebalance timeout runs out, members that did not rejoin are dropped")
    func rebalanceTimeout() throws {
        let h = try CoordinatorHarness()
        let (leader, follower, generation) = try h.stableGroupOfTwo()
        let c = h.joinNew(client: "c", rebalanceMillis: 20_000)
        let leaderRejoin = h.rejoin(leader)
        // The follower keeps heartbeating but never rejoins; the largest rebalance timeout is 30 s.
        for _ in 0..<9 {
            h.scheduler.advance(by: 3_000)
            #expect(h.heartbeat(follower, generation: generation) == .rebalanceInProgress)
        }
        #expect(leaderRejoin.isPending && c.outcome.isPending)
        h.scheduler.advance(by: 3_000)
        #expect(leaderRejoin.value?.generationId == generation + 1)
        #expect(c.outcome.value?.generationId == generation + 1)
        #expect(Set(leaderRejoin.value?.members.map(\.memberId) ?? []) == [leader, c.memberId])
        #expect(h.heartbeat(follower, generation: generation) == .unknownMemberId)
    }

    @Test("Members that never send SyncGroup are dropped after the rebalance timeout")
    func syncTimeout() throws {
        let h = try CoordinatorHarness()
        let a = h.joinNew(client: "a")
        let b = h.joinNew(client: "b")
        h.scheduler.advance(by: h.coordinator.config.initialRebalanceDelayMillis)
        #expect(a.outcome.value?.isLeader == true)
        // The follower syncs and waits; the leader heartbeats but never sends its assignment.
        let waiting = h.sync(b.memberId, generation: 1)
        for _ in 0..<9 {
            h.scheduler.advance(by: 3_000)
            #expect(h.heartbeat(a.memberId, generation: 1) == nil)
        }
        #expect(waiting.isPending)
        h.scheduler.advance(by: 3_000)
        #expect(waiting.errorCode == .rebalanceInProgress)
        #expect(try h.describe().members.map(\.memberId) == [b.memberId])
        let rejoin = h.rejoin(b.memberId)
        #expect(rejoin.value?.generationId == 2 && rejoin.value?.isLeader == true)
    }

    @Test("Protocol selection: one every member supports, the most voted; no common protocol is refused")
    func protocolSelection() throws {
        let h = try CoordinatorHarness { $0.initialRebalanceDelayMillis = 0 }
        let a = h.join(CoordinatorHarness.request(protocols: [("range", "x"), ("roundrobin", "y")], requireKnownMemberId: false))
        #expect(a.value?.protocolName == "range")
        let aid = try #require(a.value?.memberId)
        let b = h.join(CoordinatorHarness.request(protocols: [("roundrobin", "y"), ("range", "x")], requireKnownMemberId: false))
        let c = h.join(CoordinatorHarness.request(protocols: [("roundrobin", "z")], requireKnownMemberId: false))
        let sticky = h.join(CoordinatorHarness.request(protocols: [("sticky", "")], requireKnownMemberId: false))
        #expect(sticky.errorCode == .inconsistentGroupProtocol)
        let wrongType = h.join(GroupCoordinator.JoinRequest(groupId: "g", sessionTimeoutMillis: 10_000, rebalanceTimeoutMillis: 10_000,
                                                            protocolType: "connect", protocols: [.init(name: "range", metadata: [])]))
        #expect(wrongType.errorCode == .inconsistentGroupProtocol)
        let ra = h.rejoin(aid, protocols: [("range", "x"), ("roundrobin", "y")])
        for outcome in [ra, b, c] {
            #expect(outcome.value?.protocolName == "roundrobin", "range is not supported by c; roundrobin is")
        }
        #expect(ra.value?.members.map { String(decoding: $0.metadata, as: UTF8.self) } == ["y", "y", "z"], "metadata of the selected protocol")
    }

    @Test("LeaveGroup removes several members at once, by member id or group.instance.id")
    func leaveGroup() throws {
        let h = try CoordinatorHarness { $0.initialRebalanceDelayMillis = 0 }
        let a = h.join(CoordinatorHarness.request(requireKnownMemberId: false))
        let aid = try #require(a.value?.memberId)
        let s = h.join(CoordinatorHarness.request(instance: "static-1"))
        let ra = h.rejoin(aid)
        let sid = try #require(s.value?.memberId)
        let generation = try #require(ra.value?.generationId)
        h.sync(sid, generation: generation, instance: "static-1")
        h.sync(aid, generation: generation, assignments: [aid: "0,1", sid: "2,3"])
        let results = try h.coordinator.leave(groupId: "g", members: [
            .init(memberId: aid), .init(memberId: "", groupInstanceId: "static-1"), .init(memberId: "nobody"),
            .init(memberId: "wrong-id", groupInstanceId: "static-1"),
        ])
        #expect(results.map(\.error) == [nil, nil, .unknownMemberId, .unknownMemberId])
        let described = try h.describe()
        #expect(described.members.isEmpty)
        #expect(described.state == .empty, "the barrier with nobody left completes into an empty group")
        #expect(described.generationId == generation + 1)
        #expect(try h.coordinator.leave(groupId: "other", members: [.init(memberId: aid)]).map(\.error) == [.unknownMemberId])
    }

    @Test("Argument checks: session timeout range, group id, unknown member of an unknown group, group size")
    func argumentChecks() throws {
        let h = try CoordinatorHarness {
            $0.maxMembersPerGroup = 2
            $0.maxGroups = 2
        }
        #expect(h.join(CoordinatorHarness.request(sessionMillis: 1_000)).errorCode == .invalidSessionTimeout)
        #expect(h.join(CoordinatorHarness.request("")).errorCode == .invalidGroupId)
        #expect(h.join(CoordinatorHarness.request("fresh", memberId: "made-up")).errorCode == .unknownMemberId)
        _ = h.joinNew(client: "a")
        _ = h.joinNew(client: "b")
        #expect(h.join(CoordinatorHarness.request(client: "c")).errorCode == .groupMaxSizeReached)
        // A member id handed out by MEMBER_ID_REQUIRED but never used expires with the session timeout.
        let pending = h.join(CoordinatorHarness.request("p"))
        #expect(pending.errorCode == .memberIdRequired)
        h.scheduler.advance(by: 10_000)
        let late = h.join(CoordinatorHarness.request("p", memberId: try #require(pending.result.flatMap { r -> String? in
            if case .failure(let e) = r { return e.memberId } else { return nil }
        })))
        #expect(late.errorCode == .unknownMemberId)
        // Groups "g" and "p" exist; a third is refused until the retention check forgets empty ones ("p").
        #expect(h.join(CoordinatorHarness.request("q")).errorCode == .coordinatorNotAvailable)
        h.coordinator.expireOffsets()
        #expect(h.join(CoordinatorHarness.request("q")).errorCode == .memberIdRequired)
    }

    @Test("Shutdown answers held calls")
    func shutdown() throws {
        let h = try CoordinatorHarness()
        let a = h.joinNew(client: "a")
        h.coordinator.shutdown()
        #expect(a.outcome.errorCode == .coordinatorNotAvailable)
        #expect(h.heartbeat(a.memberId, generation: 0) == .coordinatorNotAvailable)
    }
}

@Suite("Group coordinator: offsets")
struct GroupCoordinatorOffsetTests {
    typealias Commit = GroupCoordinator.CommitRequest

    @Test("OffsetCommit is checked against the generation and member")
    func commitValidation() async throws {
        let h = try CoordinatorHarness()
        let tp = TopicPartition("events", 0)
        let offsets = [tp: GroupCoordinator.OffsetAndMetadata(offset: 42, metadata: "m")]
        // Outside any generation, a group without members takes simple commits.
        #expect(try await h.coordinator.commit(Commit(groupId: "solo", offsets: offsets)).isEmpty)
        #expect(try h.coordinator.fetchOffsets(groupId: "solo", partitions: [tp]).map(\.offset) == [42])
        await #expect(throws: GroupCoordinatorError.self) { try await h.coordinator.commit(Commit(groupId: "solo", generationId: 3, memberId: "x", offsets: offsets)) }

        let a = h.joinNew(client: "a")
        let b = h.joinNew(client: "b")
        h.scheduler.advance(by: h.coordinator.config.initialRebalanceDelayMillis)
        // Generation 1 is completing: commits wait for the assignment.
        #expect(await code { try await h.coordinator.commit(Commit(groupId: "g", generationId: 1, memberId: a.memberId, offsets: offsets)) } == .rebalanceInProgress)
        h.sync(b.memberId, generation: 1)
        h.sync(a.memberId, generation: 1, assignments: [a.memberId: "0", b.memberId: "1"])
        #expect(try await h.coordinator.commit(Commit(groupId: "g", generationId: 1, memberId: a.memberId, offsets: offsets)).isEmpty)
        #expect(await code { try await h.coordinator.commit(Commit(groupId: "g", generationId: 0, memberId: a.memberId, offsets: offsets)) } == .illegalGeneration)
        #expect(await code { try await h.coordinator.commit(Commit(groupId: "g", generationId: 1, memberId: "stranger", offsets: offsets)) } == .unknownMemberId)
        #expect(await code { try await h.coordinator.commit(Commit(groupId: "g", offsets: offsets)) } == .unknownMemberId,
                "a simple commit into a group with members")
        // While the group prepares a rebalance, members of the current generation may still commit (before giving partitions up).
        _ = h.joinNew(client: "c")
        #expect(try h.describe().state == .preparingRebalance)
        #expect(try await h.coordinator.commit(Commit(groupId: "g", generationId: 1, memberId: b.memberId, offsets: [tp: .init(offset: 50)])).isEmpty)
        #expect(try h.coordinator.fetchOffsets(groupId: "g", partitions: [tp]).map(\.offset) == [50])
    }

    @Test("Per-partition refusals; OffsetFetch answers -1 for nothing committed")
    func partitionRefusalsAndFetch() async throws {
        let h = try CoordinatorHarness()
        let refused = try await h.coordinator.commit(Commit(groupId: "g", offsets: [
            TopicPartition("events", 1): .init(offset: 7),
            TopicPartition("events", 9): .init(offset: 7),
            TopicPartition("events", 2): .init(offset: 7, metadata: String(repeating: "x", count: OffsetStore.maxMetadataBytes + 1)),
            TopicPartition("events", 3): .init(offset: -5),
        ]))
        #expect(refused == [TopicPartition("events", 9): .unknownTopicOrPartition, TopicPartition("events", 2): .offsetMetadataTooLarge,
                            TopicPartition("events", 3): .invalidCommitOffset])
        let fetched = try h.coordinator.fetchOffsets(groupId: "g", partitions: [TopicPartition("events", 0), TopicPartition("events", 1)])
        #expect(fetched.map(\.offset) == [-1, 7])
        #expect(try h.coordinator.fetchOffsets(groupId: "g", partitions: nil).map(\.partition) == [TopicPartition("events", 1)])
        #expect(try h.coordinator.fetchOffsets(groupId: "nobody", partitions: [TopicPartition("events", 0)]).map(\.offset) == [-1])
        // Durable: a new store over the same directory sees the commit.
        #expect(try OffsetStore(dataDirectory: h.directory).committed(group: "g")[TopicPartition("events", 1)]?.offset == 7)
    }

    @Test("ListGroups and DescribeGroups include groups known only by their offsets")
    func listAndDescribe() async throws {
        let h = try CoordinatorHarness()
        _ = try await h.coordinator.commit(Commit(groupId: "offsets-only", offsets: [TopicPartition("events", 0): .init(offset: 1)]))
        _ = h.joinNew(client: "a")
        let all = try h.coordinator.listGroups()
        #expect(all.map(\.groupId) == ["g", "offsets-only"])
        #expect(all.map(\.state) == [.preparingRebalance, .empty])
        #expect(all.map(\.protocolType) == ["consumer", ""])
        #expect(try h.coordinator.listGroups(states: [.empty]).map(\.groupId) == ["offsets-only"])
        #expect(try h.describe("offsets-only").state == .empty)
        #expect(throws: GroupCoordinatorError.self) { try h.describe("missing") }
        let preparing = try h.describe("g")
        #expect(preparing.members.count == 1 && preparing.protocolName == "", "no protocol until the group is stable")
    }

    @Test("DeleteGroups: refused with members, removes offsets when empty, unknown groups not found")
    func deleteGroups() async throws {
        let h = try CoordinatorHarness()
        let tp = TopicPartition("events", 0)
        let (leader, follower, generation) = try h.stableGroupOfTwo()
        _ = try await h.coordinator.commit(Commit(groupId: "g", generationId: generation, memberId: leader, offsets: [tp: .init(offset: 9)]))
        #expect(await h.coordinator.deleteGroups(["g", "missing", ""]).map(\.error) == [.nonEmptyGroup, .groupIdNotFound, .invalidGroupId])
        _ = try h.coordinator.leave(groupId: "g", members: [.init(memberId: leader), .init(memberId: follower)])
        #expect(try h.describe().state == .empty)
        #expect(await h.coordinator.deleteGroups(["g"]).map(\.error) == [nil])
        #expect(try h.coordinator.fetchOffsets(groupId: "g", partitions: [tp]).map(\.offset) == [-1])
        #expect(try OffsetStore(dataDirectory: h.directory).groups.isEmpty)
        #expect(throws: GroupCoordinatorError.self) { try h.describe() }
        // The id is free again.
        #expect(h.join(CoordinatorHarness.request()).errorCode == .memberIdRequired)
    }

    @Test("Offsets of an empty group expire after offsets.retention.minutes; a group with members keeps them")
    func offsetRetention() async throws {
        let h = try CoordinatorHarness { $0.offsetsRetentionMillis = 60_000 }
        let tp = TopicPartition("events", 0)
        let (leader, follower, generation) = try h.stableGroupOfTwo()
        _ = try await h.coordinator.commit(Commit(groupId: "idle", offsets: [tp: .init(offset: 3)]))
        _ = try await h.coordinator.commit(Commit(groupId: "g", generationId: generation, memberId: leader, offsets: [tp: .init(offset: 4)]))
        /// Time passes; g's members heartbeat every 3 s.
        func pass(_ millis: Int64) {
            for _ in 0..<(millis / 1_000) {
                h.scheduler.advance(by: 1_000)
                if h.scheduler.nowMillis % 3_000 == 0 {
                    #expect(h.heartbeat(leader, generation: generation) == nil && h.heartbeat(follower, generation: generation) == nil)
                }
            }
        }
        pass(59_000)
        #expect(h.coordinator.expireOffsets().isEmpty)
        // A later commit restarts the idle group's clock.
        _ = try await h.coordinator.commit(Commit(groupId: "idle", offsets: [tp: .init(offset: 5)]))
        pass(2_000)
        #expect(h.coordinator.expireOffsets().isEmpty)
        pass(60_000)
        #expect(h.coordinator.expireOffsets() == ["idle"], "g has members: its offsets stay however old")
        #expect(try h.coordinator.fetchOffsets(groupId: "idle", partitions: [tp]).map(\.offset) == [-1])
        #expect(try h.coordinator.fetchOffsets(groupId: "g", partitions: [tp]).map(\.offset) == [4])
    }

    @Test("The retention check runs on its own timer")
    func retentionTimer() async throws {
        let h = try CoordinatorHarness()
        var config = GroupCoordinatorConfig()
        config.offsetsRetentionMillis = 1_000
        config.offsetsRetentionCheckIntervalMillis = 5_000
        let coordinator = GroupCoordinator(config: config, offsets: h.store, scheduler: h.scheduler, partitionExists: { _ in true })
        defer { coordinator.shutdown() }
        _ = try await coordinator.commit(Commit(groupId: "idle", offsets: [TopicPartition("events", 0): .init(offset: 3)]))
        h.scheduler.advance(by: 4_999)
        coordinator.ioQueue.sync {}
        #expect(h.store.groups == ["idle"])
        h.scheduler.advance(by: 1)
        // The timer hands the work to the coordinator's I/O queue: wait for the queue to drain.
        coordinator.ioQueue.sync {}
        #expect(h.store.groups.isEmpty)
    }

    private func code(_ body: () async throws -> some Any) async -> GroupCoordinatorError.Code? {
        do {
            _ = try await body()
            return nil
        } catch {
            return (error as? GroupCoordinatorError)?.code
        }
    }
}

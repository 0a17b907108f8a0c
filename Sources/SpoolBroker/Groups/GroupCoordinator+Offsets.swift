import Dispatch
import SpoolRecords
import SpoolStorage
import Synchronization

// Committed offsets: OffsetCommit validated against the group's generation,
// OffsetFetch, DeleteGroups and the expiry of empty groups' offsets. Every write
// to the offset store runs on `ioQueue`, one at a time, off the callers' threads.
extension GroupCoordinator {
    public typealias CommitCompletion = @Sendable (Result<[TopicPartition: GroupCoordinatorError.Code], GroupCoordinatorError>) -> Void

    /// OffsetCommit, checked as Kafka checks it: a member of the current generation
    /// may commit (also while the group prepares a rebalance, so that it can commit
    /// before giving its partitions up), but not while the generation is completing
    /// (`rebalanceInProgress`); a stale generation is `illegalGeneration`, a stranger
    /// `unknownMemberId`. A commit with generation -1 and no member id (a consumer
    /// that assigns itself partitions) is accepted when the group has no members.
    ///
    /// The completion gets the partitions refused one by one (unknown partition, too
    /// much metadata, negative offset); all others are stored when it runs, durable as
    /// the store's ``OffsetFlushPolicy`` says (by default: written, fsynced within
    /// `offsets.flush.ms`). A group-level refusal or a store failure is a failure.
    public func commit(_ request: CommitRequest, completion: @escaping CommitCompletion) {
        let now = scheduler.nowMillis
        let checked = Result { () throws(GroupCoordinatorError) in try checkCommit(request, now) }
        if case .failure(let error) = checked {
            completion(.failure(error))
            return
        }
        var refused: [TopicPartition: GroupCoordinatorError.Code] = [:]
        var accepted: [TopicPartition: CommittedOffset] = [:]
        for (tp, o) in request.offsets {
            if o.metadata.utf8.count > config.maxCommitMetadataBytes {
                refused[tp] = .offsetMetadataTooLarge
            } else if o.offset < 0 {
                refused[tp] = .invalidCommitOffset
            } else if !partitionExists(tp) {
                refused[tp] = .unknownTopicOrPartition
            } else {
                accepted[tp] = CommittedOffset(offset: o.offset, metadata: o.metadata, commitTimestamp: now)
            }
        }
        guard !accepted.isEmpty else {
            completion(.success(refused))
            return
        }
        // Cluster mode: the offsets topic's ISR holds the commit first; the local store is then
        // this coordinator's copy (what OffsetFetch reads).
        if let ownership {
            ownership.replicate(.commit(group: request.groupId, offsets: accepted)) { [self, accepted, refused] replicated in
                switch replicated {
                case .failure(let error): completion(.failure(error))
                case .success: storeCommit(request.groupId, accepted, refused, completion)
                }
            }
            return
        }
        storeCommit(request.groupId, accepted, refused, completion)
    }

    private func storeCommit(_ groupId: String, _ accepted: [TopicPartition: CommittedOffset],
                             _ refused: [TopicPartition: GroupCoordinatorError.Code], _ completion: @escaping CommitCompletion) {
        // Handed over in order on one queue (the log's write is disk I/O, never on an event
        // loop), but never waited for there: under `.everyCommit`, commits from many groups
        // share the offsets log's group-commit fsyncs (tens of thousands a second).
        ioQueue.async { [store, accepted, refused] in
            store.commit(group: groupId, accepted) { result in
                switch result {
                case .success: completion(.success(refused))
                case .failure(let error):
                    completion(.failure(GroupCoordinatorError(.storageFailed, "offsets of group \(groupId) not stored: \(error)")))
                }
            }
        }
    }

    /// `ownership.replicate`, waited for (on the offsets queue: removals are rare).
    private func replicateWaiting(_ change: GroupOffsetsChange) throws(GroupCoordinatorError) {
        guard let ownership else { return }
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Void, GroupCoordinatorError>>(.success(()))
        ownership.replicate(change) { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }.get()
    }

    /// OffsetCommit; returns the partitions refused one by one.
    public func commit(_ request: CommitRequest) async throws(GroupCoordinatorError) -> [TopicPartition: GroupCoordinatorError.Code] {
        let result = await withCheckedContinuation { c in commit(request) { c.resume(returning: $0) } }
        return try result.get()
    }

    private func checkCommit(_ r: CommitRequest, _ now: Int64) throws(GroupCoordinatorError) {
        try locked { s, _ throws(GroupCoordinatorError) in
            try checkOpen(s)
            try validate(groupId: r.groupId)
            guard let group = s.groups[r.groupId] else {
                // No membership state: only commits outside any generation make sense.
                if r.generationId >= 0 {
                    throw GroupCoordinatorError(.illegalGeneration, "group \(r.groupId) has no generation \(r.generationId)")
                }
                return
            }
            guard group.state != .dead else {
                throw GroupCoordinatorError(.coordinatorNotAvailable, "group \(r.groupId) is being deleted")
            }
            if group.isStaticMemberFenced(memberId: r.memberId, groupInstanceId: r.groupInstanceId) {
                throw GroupCoordinatorError(.fencedInstanceId, "instance \(r.groupInstanceId ?? "") of group \(r.groupId) now has another member id")
            }
            if r.generationId < 0 && group.state == .empty { return }
            if group.state == .completingRebalance {
                throw GroupCoordinatorError(.rebalanceInProgress, "group \(r.groupId) is completing a rebalance")
            }
            guard let member = group.members[r.memberId] else {
                throw GroupCoordinatorError(.unknownMemberId, "group \(r.groupId) has no member '\(r.memberId)'")
            }
            guard r.generationId == group.generationId else {
                throw GroupCoordinatorError(.illegalGeneration, "generation \(r.generationId) is not group \(r.groupId)'s current generation \(group.generationId)")
            }
            // A member's commit proves it is alive, as a heartbeat does.
            member.lastHeartbeatMillis = now
        }
    }

    /// OffsetFetch: the committed offsets of `partitions` (-1 for those without one), or
    /// of every partition the group committed when `partitions` is nil.
    public func fetchOffsets(groupId: String, partitions: [TopicPartition]?) throws(GroupCoordinatorError) -> [FetchedOffset] {
        try locked { s, _ throws(GroupCoordinatorError) in try checkOpen(s) }
        try validate(groupId: groupId)
        let committed = store.committed(group: groupId)
        func fetched(_ tp: TopicPartition) -> FetchedOffset {
            guard let c = committed[tp] else { return FetchedOffset(partition: tp, offset: -1, metadata: "", commitTimestamp: -1) }
            return FetchedOffset(partition: tp, offset: c.offset, metadata: c.metadata, commitTimestamp: c.commitTimestamp)
        }
        return (partitions ?? committed.keys.sorted()).map(fetched)
    }

    /// DeleteGroups: removes groups without members and their committed offsets.
    /// While a deletion runs the group is `Dead`: its calls get `coordinatorNotAvailable`.
    public func deleteGroups(_ groupIds: [String], completion: @escaping @Sendable ([DeleteResult]) -> Void) {
        var results: [DeleteResult] = []
        var doomed: [(groupId: String, incarnation: UInt64)] = []
        locked { s, _ in
            for groupId in groupIds {
                if s.closed {
                    results.append(DeleteResult(groupId: groupId, error: .coordinatorNotAvailable))
                    continue
                }
                do throws(GroupCoordinatorError) {
                    try validate(groupId: groupId)
                } catch {
                    results.append(DeleteResult(groupId: groupId, error: error.code))
                    continue
                }
                let now = scheduler.nowMillis
                if let group = s.groups[groupId] {
                    guard group.state != .dead else {
                        results.append(DeleteResult(groupId: groupId, error: .groupIdNotFound))
                        continue
                    }
                    guard group.state == .empty && group.isEmpty else {
                        results.append(DeleteResult(groupId: groupId, error: .nonEmptyGroup))
                        continue
                    }
                    group.transition(to: .dead, nowMillis: now)
                    doomed.append((groupId, group.incarnation))
                } else if !store.committed(group: groupId).isEmpty {
                    // A group known only by its offsets: a Dead placeholder fences joins while the store forgets it.
                    s.nextIncarnation += 1
                    let group = ConsumerGroup(groupId: groupId, incarnation: s.nextIncarnation, nowMillis: now)
                    group.transition(to: .dead, nowMillis: now)
                    s.groups[groupId] = group
                    doomed.append((groupId, group.incarnation))
                } else {
                    results.append(DeleteResult(groupId: groupId, error: .groupIdNotFound))
                    continue
                }
                results.append(DeleteResult(groupId: groupId, error: nil))
            }
        }
        guard !doomed.isEmpty else {
            completion(results)
            return
        }
        ioQueue.async { [self, results, doomed] in
            var results = results
            for (groupId, incarnation) in doomed {
                do {
                    let partitions = store.committed(group: groupId).keys.sorted()
                    if !partitions.isEmpty { try replicateWaiting(.remove(group: groupId, partitions: partitions)) }
                    try store.removeGroup(groupId)
                } catch let error as GroupCoordinatorError {
                    if let i = results.firstIndex(where: { $0.groupId == groupId }) { results[i].error = error.code }
                } catch {
                    if let i = results.firstIndex(where: { $0.groupId == groupId }) { results[i].error = .storageFailed }
                }
                locked { s, _ in
                    if s.groups[groupId]?.incarnation == incarnation { s.groups.removeValue(forKey: groupId) }
                }
            }
            completion(results)
        }
    }

    /// DeleteGroups.
    public func deleteGroups(_ groupIds: [String]) async -> [DeleteResult] {
        await withCheckedContinuation { c in deleteGroups(groupIds) { c.resume(returning: $0) } }
    }

    /// OffsetDelete: removes `groupId`'s committed offsets of `partitions`, durably. The
    /// group-level error is `groupIdNotFound` (no such group, or it is being deleted) or
    /// `nonEmptyGroup` (members of a non-consumer protocol); per partition, one whose topic
    /// the active members subscribe to is refused with `groupSubscribedToTopic`. Returns the
    /// refused partitions with their code; every other one was deleted (or had no offset).
    public func deleteOffsets(groupId: String, partitions: [TopicPartition])
        async throws(GroupCoordinatorError) -> [TopicPartition: GroupCoordinatorError.Code] {
        try validate(groupId: groupId)
        let plan = try locked { s, _ throws(GroupCoordinatorError) -> (deletable: [TopicPartition], refused: [TopicPartition]) in
            try checkOpen(s)
            let group = s.groups[groupId]
            if group == nil && store.committed(group: groupId).isEmpty {
                throw GroupCoordinatorError(.groupIdNotFound, "group \(groupId) does not exist")
            }
            guard let group, group.state != .empty else { return (partitions, []) }
            if group.state == .dead { throw GroupCoordinatorError(.groupIdNotFound, "group \(groupId) is being deleted") }
            guard group.protocolType == "consumer" else {
                throw GroupCoordinatorError(.nonEmptyGroup, "group \(groupId) has members of protocol type \(group.protocolType ?? "none")")
            }
            var subscribed: Set<String> = []
            for member in group.membersInOrder {
                let chosen = member.protocols.first { $0.name == group.protocolName } ?? member.protocols.first
                subscribed.formUnion(chosen.flatMap { ConsumerSubscription.topics($0.metadata) } ?? [])
            }
            return (partitions.filter { !subscribed.contains($0.topic) }, partitions.filter { subscribed.contains($0.topic) })
        }
        do {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                ioQueue.async { [self, store] in
                    do {
                        if !plan.deletable.isEmpty { try replicateWaiting(.remove(group: groupId, partitions: plan.deletable)) }
                        try store.removeOffsets(group: groupId, plan.deletable)
                        c.resume()
                    } catch {
                        c.resume(throwing: error)
                    }
                }
            }
        } catch let error as GroupCoordinatorError {
            throw error
        } catch {
            throw GroupCoordinatorError(.storageFailed, "deleting committed offsets of \(groupId): \(error)")
        }
        var refused: [TopicPartition: GroupCoordinatorError.Code] = [:]
        for tp in plan.refused { refused[tp] = .groupSubscribedToTopic }
        return refused
    }

    /// Deletes the committed offsets of every group without members whose last commit and
    /// whose becoming empty are both older than `offsetsRetentionMillis`, and forgets empty
    /// groups that hold nothing. Returns the groups whose offsets expired. Runs on a
    /// timer every `offsetsRetentionCheckIntervalMillis`; callable by hand (it waits for
    /// commits in flight, and does disk I/O).
    @discardableResult
    public func expireOffsets() -> [String] {
        ioQueue.sync { expireOffsetsOnQueue() }
    }

    private func expireOffsetsOnQueue() -> [String] {
        let now = scheduler.nowMillis
        var expired: [String] = []
        var failures: [(group: String, error: String)] = []
        for groupId in store.groups {
            let newestCommit = store.committed(group: groupId).values.map(\.commitTimestamp).max() ?? 0
            let (active, emptySince) = state.withLock { s -> (Bool, Int64) in
                guard let group = s.groups[groupId] else { return (false, 0) }
                return (group.state != .empty || !group.pendingMembers.isEmpty, group.stateChangedMillis)
            }
            guard !active, max(newestCommit, emptySince) + config.offsetsRetentionMillis <= now else { continue }
            // A store failure leaves the offsets for the next round (and is reported).
            do {
                try store.removeGroup(groupId)
                expired.append(groupId)
            } catch {
                failures.append((groupId, "\(error)"))
            }
        }
        expiryRan(failures)
        let holdingOffsets = Set(store.groups)
        state.withLock { s in
            s.groups = s.groups.filter { groupId, group in
                !(group.state == .empty && group.pendingMembers.isEmpty && !holdingOffsets.contains(groupId))
            }
        }
        return expired
    }

    func scheduleRetentionCheck() {
        let interval = config.offsetsRetentionCheckIntervalMillis
        guard interval > 0 else { return }
        scheduler.schedule(afterMillis: interval) { [weak self] in
            guard let self, !self.state.withLock({ $0.closed }) else { return }
            self.ioQueue.async {
                _ = self.expireOffsetsOnQueue()
                self.scheduleRetentionCheck()
            }
        }
    }

    // MARK: ListGroups and DescribeGroups

    /// ListGroups: groups with members or committed offsets, by id; only those in
    /// `states` when given.
    public func listGroups(states: Set<GroupState>? = nil) throws(GroupCoordinatorError) -> [GroupOverview] {
        let live = try locked { s, _ throws(GroupCoordinatorError) -> [GroupOverview] in
            try checkOpen(s)
            return s.groups.values.filter { $0.state != .dead }.map {
                GroupOverview(groupId: $0.groupId, protocolType: $0.protocolType ?? "", state: $0.state)
            }
        }
        var all = Dictionary(uniqueKeysWithValues: live.map { ($0.groupId, $0) })
        for groupId in store.groups where all[groupId] == nil {
            all[groupId] = GroupOverview(groupId: groupId, protocolType: "", state: .empty)
        }
        // Cluster mode: only the groups coordinated here (the others' copies may be stale).
        let ownership = ownership
        return all.values.filter { (states?.contains($0.state) ?? true) && (ownership?.coordinates($0.groupId) ?? true) }
            .sorted { $0.groupId < $1.groupId }
    }

    /// DescribeGroups for one group. Throws `groupIdNotFound` for a group without
    /// members or offsets (Kafka's older versions answer such a group as `Dead`).
    public func describeGroup(_ groupId: String) throws(GroupCoordinatorError) -> GroupDescription {
        try validate(groupId: groupId)
        let live = try locked { s, _ throws(GroupCoordinatorError) -> GroupDescription? in
            try checkOpen(s)
            guard let group = s.groups[groupId], group.state != .dead else { return nil }
            let stable = group.state == .stable
            return GroupDescription(
                groupId: groupId, state: group.state, protocolType: group.protocolType ?? "",
                protocolName: stable ? group.protocolName ?? "" : "", generationId: group.generationId, leaderId: group.leaderId,
                members: group.membersInOrder.map { m in
                    MemberDescription(
                        memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                        metadata: stable ? m.metadata(for: group.protocolName) : [], assignment: stable ? m.assignment : [])
                })
        }
        if let live { return live }
        guard !store.committed(group: groupId).isEmpty else {
            throw GroupCoordinatorError(.groupIdNotFound, "group \(groupId) does not exist")
        }
        return GroupDescription(groupId: groupId, state: .empty, protocolType: "", protocolName: "", generationId: 0, leaderId: nil, members: [])
    }
}

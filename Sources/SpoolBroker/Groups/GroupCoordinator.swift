import Dispatch
import SpoolRecords
import SpoolStorage
import Synchronization

/// The consumer-group coordinator of Kafka's classic group protocol, shared by
/// every listener: membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
/// generations, static membership, session and rebalance timeouts, and committed
/// offsets kept in the durable ``OffsetStore``.
///
/// JoinGroup is a **barrier**: once a rebalance starts, every JoinGroup is held
/// until all known members rejoined (or the rebalance timeout, the largest of the
/// members', ran out; members that did not rejoin are then dropped). Only then is
/// the new generation formed and every held JoinGroup answered at once: the
/// leader gets the members and their metadata, followers an empty list. The
/// leader computes the assignment (client side, as in Kafka) and sends it with
/// its SyncGroup; followers' SyncGroups wait for it.
///
/// Calls that wait take a completion (or are `async`); the others return at once.
/// Every method may be called from any thread. Completions run on the thread that
/// completed them, never under the coordinator's lock. Time comes from an injected
/// ``CoordinatorScheduler``.
///
/// ```swift
/// let coordinator = GroupCoordinator(offsets: storage.offsets, partitionExists: { tp in (try? storage.partition(tp)) != nil })
/// let joined = try await coordinator.join(.init(groupId: "g", sessionTimeoutMillis: 10_000,
///                                               rebalanceTimeoutMillis: 30_000, protocols: [.init(name: "range", metadata: [])]))
/// ```
public final class GroupCoordinator: Sendable {
    public typealias JoinCompletion = @Sendable (Result<JoinResult, GroupCoordinatorError>) -> Void
    public typealias SyncCompletion = @Sendable (Result<SyncResult, GroupCoordinatorError>) -> Void

    public let config: GroupCoordinatorConfig
    let store: OffsetStore
    let scheduler: CoordinatorScheduler
    let partitionExists: @Sendable (TopicPartition) -> Bool
    /// Told when a rebalance completes: group, new generation, member ids (for the log).
    let rebalanced: @Sendable (_ group: String, _ generation: Int32, _ members: [String]) -> Void
    /// Told after every offset-expiry round which groups' offsets could not be removed.
    let expiryRan: @Sendable (_ failures: [(group: String, error: String)]) -> Void
    /// Serialises every write to the offset store (commits, deletes, expiry), off the callers' threads.
    let ioQueue = DispatchQueue(label: "spool.group-coordinator.offsets")
    let state = Mutex(State())
    private let ownershipBox = Mutex<(any GroupOwnership)?>(nil)

    /// Cluster mode: which groups this broker coordinates and where their offsets replicate
    /// (set once, when the broker joins a cluster); nil: every group, offsets kept here.
    public var ownership: (any GroupOwnership)? {
        get { ownershipBox.withLock { $0 } }
        set { ownershipBox.withLock { $0 = newValue } }
    }

    struct State {
        var groups: [String: ConsumerGroup] = [:]
        var nextIncarnation: UInt64 = 0
        var closed = false
    }

    /// Work to do once the lock is released: completions and timer registrations.
    struct Effects {
        var actions: [@Sendable () -> Void] = []
        mutating func later(_ action: @escaping @Sendable () -> Void) { actions.append(action) }
        func run() { for action in actions { action() } }
    }

    /// - Parameters:
    ///   - offsets: the durable store of committed offsets.
    ///   - partitionExists: whether a partition may take commits.
    public init(
        config: GroupCoordinatorConfig = GroupCoordinatorConfig(), offsets: OffsetStore,
        scheduler: CoordinatorScheduler = DispatchCoordinatorScheduler(),
        rebalanced: @escaping @Sendable (_ group: String, _ generation: Int32, _ members: [String]) -> Void = { _, _, _ in },
        expiryRan: @escaping @Sendable (_ failures: [(group: String, error: String)]) -> Void = { _ in },
        partitionExists: @escaping @Sendable (TopicPartition) -> Bool
    ) {
        self.rebalanced = rebalanced
        self.expiryRan = expiryRan
        self.config = config
        self.store = offsets
        self.scheduler = scheduler
        self.partitionExists = partitionExists
        scheduleRetentionCheck()
    }

    /// Stops the coordinator: every held JoinGroup and SyncGroup is answered with
    /// `coordinatorNotAvailable`, and so is every later call.
    public func shutdown() {
        locked { s, fx in
            s.closed = true
            for group in s.groups.values {
                for member in group.members.values {
                    fail(&member.awaitingJoin, .coordinatorNotAvailable, "the coordinator is shutting down", &fx)
                    fail(&member.awaitingSync, .coordinatorNotAvailable, "the coordinator is shutting down", &fx)
                }
            }
        }
    }

    /// Runs `body` under the lock, then the effects it collected, outside the lock.
    func locked<R: Sendable, E: Error>(_ body: (inout State, inout Effects) throws(E) -> R) throws(E) -> R {
        var effects = Effects()
        defer { effects.run() }
        return try state.withLock { (s: inout State) throws(E) -> R in try body(&s, &effects) }
    }

    // MARK: JoinGroup

    /// JoinGroup. The completion runs when the generation is formed (the barrier), at
    /// once for a rejoin that changes nothing, or with an error.
    public func join(_ request: JoinRequest, completion: @escaping JoinCompletion) {
        locked { s, fx in
            do throws(GroupCoordinatorError) {
                try join(request, completion, &s, &fx)
            } catch {
                fx.later { completion(.failure(error)) }
            }
        }
    }

    /// JoinGroup, waiting for the barrier.
    public func join(_ request: JoinRequest) async throws(GroupCoordinatorError) -> JoinResult {
        let result = await withCheckedContinuation { c in join(request) { c.resume(returning: $0) } }
        return try result.get()
    }

    private func join(_ r: JoinRequest, _ completion: @escaping JoinCompletion, _ s: inout State, _ fx: inout Effects) throws(GroupCoordinatorError) {
        try checkOpen(s)
        try validate(groupId: r.groupId)
        guard r.sessionTimeoutMillis >= config.minSessionTimeoutMillis, r.sessionTimeoutMillis <= config.maxSessionTimeoutMillis else {
            throw GroupCoordinatorError(.invalidSessionTimeout,
                "session timeout \(r.sessionTimeoutMillis) ms is outside \(config.minSessionTimeoutMillis)...\(config.maxSessionTimeoutMillis) ms")
        }
        let now = scheduler.nowMillis
        let group: ConsumerGroup
        if let existing = s.groups[r.groupId] {
            group = existing
        } else {
            guard r.memberId.isEmpty else {
                throw GroupCoordinatorError(.unknownMemberId, "group \(r.groupId) has no member \(r.memberId)")
            }
            guard s.groups.count < config.maxGroups else {
                throw GroupCoordinatorError(.coordinatorNotAvailable, "the coordinator holds \(config.maxGroups) groups already")
            }
            s.nextIncarnation += 1
            group = ConsumerGroup(groupId: r.groupId, incarnation: s.nextIncarnation, nowMillis: now)
            s.groups[r.groupId] = group
        }
        guard group.state != .dead else {
            throw GroupCoordinatorError(.coordinatorNotAvailable, "group \(r.groupId) is being deleted")
        }
        guard group.supports(protocolType: r.protocolType, protocols: r.protocols) else {
            throw GroupCoordinatorError(.inconsistentGroupProtocol,
                "protocol type '\(r.protocolType)' with protocols \(r.protocols.map(\.name)) does not fit the members of group \(r.groupId)")
        }

        if r.memberId.isEmpty {
            let newMemberId = Self.newMemberId(clientId: r.clientId)
            if let instance = r.groupInstanceId, let oldMemberId = group.staticMemberId(instance) {
                rejoinStaticMember(group, instance, oldMemberId: oldMemberId, newMemberId: newMemberId, r, completion, now, &fx)
                return
            }
            guard group.size < config.maxMembersPerGroup else {
                throw GroupCoordinatorError(.groupMaxSizeReached, "group \(r.groupId) has \(config.maxMembersPerGroup) members already")
            }
            if r.groupInstanceId == nil && r.requireKnownMemberId {
                // The client must come back with this id; until then the group counts it as pending.
                group.pendingMembers.insert(newMemberId)
                scheduleTimer(group, afterMillis: Int64(r.sessionTimeoutMillis), &fx) { coordinator, groupId, incarnation in
                    coordinator.pendingMemberExpired(groupId, incarnation, newMemberId)
                }
                throw GroupCoordinatorError(.memberIdRequired, "rejoin with the member id given", memberId: newMemberId)
            }
            addMemberAndRebalance(group, newMemberId, r, completion, now, &fx)
            return
        }

        if group.pendingMembers.remove(r.memberId) != nil {
            addMemberAndRebalance(group, r.memberId, r, completion, now, &fx)
            return
        }
        if group.isStaticMemberFenced(memberId: r.memberId, groupInstanceId: r.groupInstanceId) {
            throw GroupCoordinatorError(.fencedInstanceId, "instance \(r.groupInstanceId ?? "") of group \(r.groupId) now has another member id")
        }
        guard let member = group.members[r.memberId] else {
            throw GroupCoordinatorError(.unknownMemberId, "group \(r.groupId) has no member \(r.memberId)")
        }
        switch group.state {
        case .preparingRebalance:
            hold(member, r, completion, &fx)
            tryCompleteJoin(group, now, &fx)
        case .completingRebalance:
            if member.matches(r.protocols) {
                // The member missed its JoinGroup answer: send it again.
                member.lastHeartbeatMillis = now
                let result = joinResult(group, member)
                fx.later { completion(.success(result)) }
            } else {
                hold(member, r, completion, &fx)
                prepareRebalance(group, now, &fx)
            }
        case .stable:
            if member.memberId == group.leaderId || !member.matches(r.protocols) {
                // A leader rejoins to reassign (its subscription may have changed); so does a member whose metadata changed.
                hold(member, r, completion, &fx)
                prepareRebalance(group, now, &fx)
            } else {
                member.lastHeartbeatMillis = now
                let result = joinResult(group, member)
                fx.later { completion(.success(result)) }
            }
        case .empty, .dead:
            throw GroupCoordinatorError(.unknownMemberId, "group \(r.groupId) has no member \(r.memberId)")
        }
    }

    /// Parks a member's JoinGroup at the barrier with its new settings.
    private func hold(_ member: GroupMember, _ r: JoinRequest, _ completion: @escaping JoinCompletion, _ fx: inout Effects) {
        fail(&member.awaitingJoin, .rebalanceInProgress, "superseded by a newer JoinGroup of the same member", &fx)
        member.update(from: r)
        member.awaitingJoin = completion
    }

    private func addMemberAndRebalance(
        _ group: ConsumerGroup, _ memberId: String, _ r: JoinRequest, _ completion: @escaping JoinCompletion, _ now: Int64, _ fx: inout Effects
    ) {
        let member = GroupMember(memberId: memberId, request: r, sequence: group.makeSequence(), nowMillis: now)
        member.awaitingJoin = completion
        group.add(member)
        scheduleSessionCheck(group, memberId, afterMillis: member.sessionTimeoutMillis, &fx)
        if group.state == .preparingRebalance, group.initialDelayDeadlineMillis != nil {
            // Each member joining during the initial delay extends it, up to the rebalance deadline.
            let extended = min(now + config.initialRebalanceDelayMillis, group.rebalanceDeadlineMillis)
            group.initialDelayDeadlineMillis = extended
            scheduleJoinTimer(group, atMillis: extended, now, &fx)
        }
        maybePrepareRebalance(group, now, &fx)
    }

    /// A static member restarted (empty member id, known instance id): it takes the old
    /// member's slot under a new member id; the old id is fenced. In a stable group whose
    /// protocol this does not change, there is no rebalance: the member gets the current
    /// generation and, with SyncGroup, its old assignment.
    private func rejoinStaticMember(
        _ group: ConsumerGroup, _ instance: String, oldMemberId: String, newMemberId: String,
        _ r: JoinRequest, _ completion: @escaping JoinCompletion, _ now: Int64, _ fx: inout Effects
    ) {
        let leaderBefore = group.leaderId
        let member = group.replaceStaticMember(instance, oldMemberId: oldMemberId, newMemberId: newMemberId)
        fail(&member.awaitingJoin, .fencedInstanceId, "instance \(instance) rejoined with a new member id", &fx)
        fail(&member.awaitingSync, .fencedInstanceId, "instance \(instance) rejoined with a new member id", &fx)
        member.lastHeartbeatMillis = now
        // The old id's session timer dies with the old id; the new id gets its own.
        scheduleSessionCheck(group, newMemberId, afterMillis: Int64(r.sessionTimeoutMillis), &fx)
        switch group.state {
        case .stable:
            member.update(from: r)
            if group.selectProtocol() == group.protocolName {
                // The old leader id is returned so that a rejoined leader does not compute an
                // assignment a stable group would never hand out.
                var rejoined = joinResult(group, member)
                rejoined.leaderId = leaderBefore ?? ""
                rejoined.members = []
                let result = rejoined
                fx.later { completion(.success(result)) }
            } else {
                member.awaitingJoin = completion
                prepareRebalance(group, now, &fx)
            }
        case .completingRebalance:
            hold(member, r, completion, &fx)
            prepareRebalance(group, now, &fx)
        case .preparingRebalance:
            hold(member, r, completion, &fx)
            tryCompleteJoin(group, now, &fx)
        case .empty, .dead:
            assertionFailure("group \(group.groupId) is \(group.state) yet has static member \(instance)")
            fx.later { completion(.failure(GroupCoordinatorError(.unknownMemberId, "instance \(instance) is not a member"))) }
        }
    }

    private func maybePrepareRebalance(_ group: ConsumerGroup, _ now: Int64, _ fx: inout Effects) {
        switch group.state {
        case .stable, .completingRebalance, .empty: prepareRebalance(group, now, &fx)
        case .preparingRebalance: tryCompleteJoin(group, now, &fx)
        case .dead: break
        }
    }

    /// Starts a rebalance: from now on every member must rejoin.
    private func prepareRebalance(_ group: ConsumerGroup, _ now: Int64, _ fx: inout Effects) {
        if group.state == .completingRebalance {
            // The generation being formed is abandoned: its waiting SyncGroups learn so.
            for member in group.members.values {
                member.assignment = []
                fail(&member.awaitingSync, .rebalanceInProgress, "group \(group.groupId) is rebalancing", &fx)
            }
        }
        group.pendingSync.removeAll()
        let fromEmpty = group.state == .empty
        group.transition(to: .preparingRebalance, nowMillis: now)
        group.rebalanceRound += 1
        group.rebalanceDeadlineMillis = now + group.rebalanceTimeoutMillis
        scheduleJoinTimer(group, atMillis: group.rebalanceDeadlineMillis, now, &fx)
        if fromEmpty && config.initialRebalanceDelayMillis > 0 {
            let delayed = min(now + config.initialRebalanceDelayMillis, group.rebalanceDeadlineMillis)
            group.initialDelayDeadlineMillis = delayed
            scheduleJoinTimer(group, atMillis: delayed, now, &fx)
        } else {
            group.initialDelayDeadlineMillis = nil
        }
        tryCompleteJoin(group, now, &fx)
    }

    /// Completes the barrier if every known member rejoined (and the initial delay is over).
    private func tryCompleteJoin(_ group: ConsumerGroup, _ now: Int64, _ fx: inout Effects) {
        guard group.state == .preparingRebalance else { return }
        if let delayed = group.initialDelayDeadlineMillis {
            guard now >= delayed else { return }
            group.initialDelayDeadlineMillis = nil
        }
        if group.allMembersJoined { completeJoin(group, now, &fx) }
    }

    private func joinTimerFired(_ groupId: String, _ incarnation: UInt64, _ round: UInt64) {
        locked { s, fx in
            guard !s.closed, let group = s.groups[groupId], group.incarnation == incarnation,
                  group.state == .preparingRebalance, group.rebalanceRound == round else { return }
            let now = scheduler.nowMillis
            if now >= group.rebalanceDeadlineMillis, group.initialDelayDeadlineMillis.map({ now >= $0 }) ?? true {
                group.initialDelayDeadlineMillis = nil
                completeJoin(group, now, &fx)
            } else {
                tryCompleteJoin(group, now, &fx)
            }
        }
    }

    /// Forms the next generation from the members that rejoined and answers their JoinGroups.
    private func completeJoin(_ group: ConsumerGroup, _ now: Int64, _ fx: inout Effects) {
        assert(group.state == .preparingRebalance)
        // Dynamic members that did not rejoin in time are out; static ones keep their slot until their session expires.
        for member in group.membersInOrder where member.awaitingJoin == nil && member.groupInstanceId == nil {
            removeMember(group, member.memberId, &fx)
        }
        if !group.isEmpty && !group.members.values.contains(where: { $0.awaitingJoin != nil }) {
            // Only static members that have not rejoined: give them another rebalance timeout.
            group.rebalanceDeadlineMillis = now + group.rebalanceTimeoutMillis
            scheduleJoinTimer(group, atMillis: group.rebalanceDeadlineMillis, now, &fx)
            return
        }
        if let leader = group.leaderId, group.members[leader]?.awaitingJoin == nil {
            group.leaderId = group.electLeader()
        }
        group.generationId = group.generationId == Int32.max ? 1 : group.generationId + 1
        let (groupId, generation, members) = (group.groupId, group.generationId, group.membersInOrder.map(\.memberId))
        fx.later { [rebalanced] in rebalanced(groupId, generation, members) }
        if group.isEmpty {
            group.protocolName = nil
            group.transition(to: .empty, nowMillis: now)
        } else {
            group.protocolName = group.selectProtocol()
            group.transition(to: .completingRebalance, nowMillis: now)
            group.pendingSync = Set(group.members.keys)
            let generation = group.generationId
            scheduleTimer(group, afterMillis: group.rebalanceTimeoutMillis, &fx) { coordinator, groupId, incarnation in
                coordinator.syncTimerFired(groupId, incarnation, generation)
            }
        }
        for member in group.membersInOrder {
            guard let completion = member.awaitingJoin else { continue }
            member.awaitingJoin = nil
            member.lastHeartbeatMillis = now
            let result = joinResult(group, member)
            fx.later { completion(.success(result)) }
        }
    }

    private func joinResult(_ group: ConsumerGroup, _ member: GroupMember) -> JoinResult {
        let isLeader = member.memberId == group.leaderId
        return JoinResult(
            generationId: group.generationId, protocolType: group.protocolType, protocolName: group.protocolName,
            leaderId: group.leaderId ?? "", memberId: member.memberId,
            members: isLeader
                ? group.membersInOrder.map { JoinedMember(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata(for: group.protocolName)) }
                : [])
    }

    // MARK: SyncGroup

    /// SyncGroup. A follower's completion runs when the leader's SyncGroup arrives
    /// (or the generation is abandoned); the leader's at once.
    public func sync(_ request: SyncRequest, completion: @escaping SyncCompletion) {
        locked { s, fx in
            do throws(GroupCoordinatorError) {
                try sync(request, completion, &s, &fx)
            } catch {
                fx.later { completion(.failure(error)) }
            }
        }
    }

    /// SyncGroup, waiting for the leader's assignment.
    public func sync(_ request: SyncRequest) async throws(GroupCoordinatorError) -> SyncResult {
        let result = await withCheckedContinuation { c in sync(request) { c.resume(returning: $0) } }
        return try result.get()
    }

    private func sync(_ r: SyncRequest, _ completion: @escaping SyncCompletion, _ s: inout State, _ fx: inout Effects) throws(GroupCoordinatorError) {
        let (group, member) = try member(r.groupId, r.memberId, r.groupInstanceId, r.generationId, s)
        if let type = r.protocolType, type != group.protocolType {
            throw GroupCoordinatorError(.inconsistentGroupProtocol, "protocol type \(type) is not group \(r.groupId)'s")
        }
        if let name = r.protocolName, name != group.protocolName {
            throw GroupCoordinatorError(.inconsistentGroupProtocol, "protocol \(name) is not the one selected for group \(r.groupId)")
        }
        let now = scheduler.nowMillis
        switch group.state {
        case .empty, .dead:
            throw GroupCoordinatorError(.unknownMemberId, "group \(r.groupId) has no member \(r.memberId)")
        case .preparingRebalance:
            throw GroupCoordinatorError(.rebalanceInProgress, "group \(r.groupId) is rebalancing: rejoin")
        case .completingRebalance:
            fail(&member.awaitingSync, .rebalanceInProgress, "superseded by a newer SyncGroup of the same member", &fx)
            member.awaitingSync = completion
            member.lastHeartbeatMillis = now
            group.pendingSync.remove(member.memberId)
            if member.memberId == group.leaderId {
                for m in group.members.values { m.assignment = r.assignments[m.memberId] ?? [] }
                group.transition(to: .stable, nowMillis: now)
                for m in group.members.values {
                    guard let done = m.awaitingSync else { continue }
                    m.awaitingSync = nil
                    let result = SyncResult(protocolType: group.protocolType, protocolName: group.protocolName, assignment: m.assignment)
                    fx.later { done(.success(result)) }
                }
            }
        case .stable:
            member.lastHeartbeatMillis = now
            group.pendingSync.remove(member.memberId)
            let result = SyncResult(protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment)
            fx.later { completion(.success(result)) }
        }
    }

    /// Members of a new generation that never sent SyncGroup are dropped, which starts another rebalance.
    private func syncTimerFired(_ groupId: String, _ incarnation: UInt64, _ generation: Int32) {
        locked { s, fx in
            guard !s.closed, let group = s.groups[groupId], group.incarnation == incarnation, group.generationId == generation,
                  group.state == .completingRebalance || group.state == .stable, !group.pendingSync.isEmpty else { return }
            for memberId in group.pendingSync { removeMember(group, memberId, &fx) }
            maybePrepareRebalance(group, scheduler.nowMillis, &fx)
        }
    }

    // MARK: Heartbeat and LeaveGroup

    /// Heartbeat: keeps the member's session alive. Throws `rebalanceInProgress` when
    /// the member must rejoin.
    public func heartbeat(groupId: String, memberId: String, groupInstanceId: String? = nil, generationId: Int32) throws(GroupCoordinatorError) {
        try locked { s, _ throws(GroupCoordinatorError) in
            let (group, member) = try member(groupId, memberId, groupInstanceId, generationId, s)
            switch group.state {
            case .empty, .dead:
                throw GroupCoordinatorError(.unknownMemberId, "group \(groupId) has no member \(memberId)")
            case .completingRebalance, .stable:
                member.lastHeartbeatMillis = scheduler.nowMillis
            case .preparingRebalance:
                member.lastHeartbeatMillis = scheduler.nowMillis
                throw GroupCoordinatorError(.rebalanceInProgress, "group \(groupId) is rebalancing: rejoin")
            }
        }
    }

    /// LeaveGroup for one or more members, each named by member id or `group.instance.id`.
    /// The group rebalances without them.
    public func leave(groupId: String, members: [MemberIdentity]) throws(GroupCoordinatorError) -> [LeaveResult] {
        try locked { s, fx throws(GroupCoordinatorError) in
            try checkOpen(s)
            try validate(groupId: groupId)
            guard let group = s.groups[groupId] else {
                return members.map { LeaveResult(member: $0, error: .unknownMemberId) }
            }
            guard group.state != .dead else {
                throw GroupCoordinatorError(.coordinatorNotAvailable, "group \(groupId) is being deleted")
            }
            let now = scheduler.nowMillis
            var results: [LeaveResult] = []
            for identity in members {
                var memberId = identity.memberId
                if let instance = identity.groupInstanceId {
                    let holder = group.staticMemberId(instance)
                    if memberId.isEmpty { memberId = holder ?? "" }
                    if let holder, holder != memberId {
                        results.append(LeaveResult(member: identity, error: .fencedInstanceId))
                        continue
                    }
                }
                if group.pendingMembers.remove(memberId) != nil {
                    tryCompleteJoin(group, now, &fx)
                    results.append(LeaveResult(member: identity, error: nil))
                } else if group.members[memberId] != nil {
                    removeMemberAndUpdateGroup(group, memberId, now, &fx)
                    results.append(LeaveResult(member: identity, error: nil))
                } else {
                    results.append(LeaveResult(member: identity, error: .unknownMemberId))
                }
            }
            return results
        }
    }

    /// The group and member a generation-bound call names, checked as Kafka checks them.
    private func member(
        _ groupId: String, _ memberId: String, _ groupInstanceId: String?, _ generationId: Int32, _ s: State
    ) throws(GroupCoordinatorError) -> (ConsumerGroup, GroupMember) {
        try checkOpen(s)
        try validate(groupId: groupId)
        guard let group = s.groups[groupId] else {
            throw GroupCoordinatorError(.unknownMemberId, "group \(groupId) has no members")
        }
        guard group.state != .dead else {
            throw GroupCoordinatorError(.coordinatorNotAvailable, "group \(groupId) is being deleted")
        }
        if group.isStaticMemberFenced(memberId: memberId, groupInstanceId: groupInstanceId) {
            throw GroupCoordinatorError(.fencedInstanceId, "instance \(groupInstanceId ?? "") of group \(groupId) now has another member id")
        }
        guard let member = group.members[memberId] else {
            throw GroupCoordinatorError(.unknownMemberId, "group \(groupId) has no member \(memberId)")
        }
        guard generationId == group.generationId else {
            throw GroupCoordinatorError(.illegalGeneration, "generation \(generationId) is not group \(groupId)'s current generation \(group.generationId)")
        }
        return (group, member)
    }

    // MARK: Membership bookkeeping

    /// Removes a member; its held calls learn it is no longer a member. Does not rebalance.
    private func removeMember(_ group: ConsumerGroup, _ memberId: String, _ fx: inout Effects) {
        guard let member = group.remove(memberId) else { return }
        fail(&member.awaitingJoin, .unknownMemberId, "member \(memberId) was removed from group \(group.groupId)", &fx)
        fail(&member.awaitingSync, .unknownMemberId, "member \(memberId) was removed from group \(group.groupId)", &fx)
    }

    private func removeMemberAndUpdateGroup(_ group: ConsumerGroup, _ memberId: String, _ now: Int64, _ fx: inout Effects) {
        removeMember(group, memberId, &fx)
        switch group.state {
        case .stable, .completingRebalance: prepareRebalance(group, now, &fx)
        case .preparingRebalance: tryCompleteJoin(group, now, &fx)
        case .empty, .dead: break
        }
    }

    /// One timer chain per member: when it fires, the member is removed if its session
    /// expired, else the timer is set again for the new expiry.
    private func scheduleSessionCheck(_ group: ConsumerGroup, _ memberId: String, afterMillis: Int64, _ fx: inout Effects) {
        scheduleTimer(group, afterMillis: afterMillis, &fx) { coordinator, groupId, incarnation in
            coordinator.sessionCheckFired(groupId, incarnation, memberId)
        }
    }

    private func sessionCheckFired(_ groupId: String, _ incarnation: UInt64, _ memberId: String) {
        locked { s, fx in
            guard !s.closed, let group = s.groups[groupId], group.incarnation == incarnation,
                  let member = group.members[memberId] else { return }
            let now = scheduler.nowMillis
            if member.awaitingJoin != nil || member.awaitingSync != nil {
                // Held at a barrier: the rebalance and sync timeouts bound that wait.
                scheduleSessionCheck(group, memberId, afterMillis: member.sessionTimeoutMillis, &fx)
                return
            }
            let expiry = member.lastHeartbeatMillis + member.sessionTimeoutMillis
            if now < expiry {
                scheduleSessionCheck(group, memberId, afterMillis: expiry - now, &fx)
                return
            }
            removeMemberAndUpdateGroup(group, memberId, now, &fx)
        }
    }

    private func pendingMemberExpired(_ groupId: String, _ incarnation: UInt64, _ memberId: String) {
        locked { s, fx in
            guard !s.closed, let group = s.groups[groupId], group.incarnation == incarnation,
                  group.pendingMembers.remove(memberId) != nil else { return }
            tryCompleteJoin(group, scheduler.nowMillis, &fx)
        }
    }

    private func scheduleJoinTimer(_ group: ConsumerGroup, atMillis: Int64, _ now: Int64, _ fx: inout Effects) {
        let round = group.rebalanceRound
        scheduleTimer(group, afterMillis: atMillis - now, &fx) { coordinator, groupId, incarnation in
            coordinator.joinTimerFired(groupId, incarnation, round)
        }
    }

    /// Schedules `action` (once the lock is released); it runs only if the coordinator still exists.
    private func scheduleTimer(
        _ group: ConsumerGroup, afterMillis: Int64, _ fx: inout Effects,
        _ action: @escaping @Sendable (GroupCoordinator, String, UInt64) -> Void
    ) {
        let groupId = group.groupId
        let incarnation = group.incarnation
        let scheduler = self.scheduler
        fx.later { [weak self] in
            guard self != nil else { return }
            scheduler.schedule(afterMillis: max(0, afterMillis)) { [weak self] in
                if let self { action(self, groupId, incarnation) }
            }
        }
    }

    /// Answers a held call with an error and clears it.
    func fail<T>(
        _ slot: inout (@Sendable (Result<T, GroupCoordinatorError>) -> Void)?, _ code: GroupCoordinatorError.Code, _ message: String,
        _ fx: inout Effects
    ) {
        guard let completion = slot else { return }
        slot = nil
        let error = GroupCoordinatorError(code, message)
        fx.later { completion(.failure(error)) }
    }

    func checkOpen(_ s: State) throws(GroupCoordinatorError) {
        if s.closed { throw GroupCoordinatorError(.coordinatorNotAvailable, "the group coordinator is shut down") }
    }

    /// A valid group id of a group this broker coordinates (cluster mode: the ownership's check).
    func validate(groupId: String) throws(GroupCoordinatorError) {
        guard !groupId.isEmpty, groupId.utf8.count <= config.maxGroupIdBytes else {
            throw GroupCoordinatorError(.invalidGroupId, "group id must be 1 to \(config.maxGroupIdBytes) bytes")
        }
        try ownership?.checkCoordinates(groupId)
    }

    /// `clientId-` and a random UUID, as Kafka forms member ids.
    static func newMemberId(clientId: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let hex = (0..<16).map { _ -> String in
            let byte = UInt8.random(in: 0...255, using: &rng)
            return String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }
        let uuid = hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
        return (clientId.isEmpty ? "member" : clientId) + "-" + uuid
    }
}

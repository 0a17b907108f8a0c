/// One consumer group's membership state: its members, generation, leader and
/// rebalance bookkeeping. The coordinator drives the transitions; this type keeps
/// the data and answers questions about it.
/// Not thread-safe: guarded by the coordinator's lock.
final class ConsumerGroup {
    let groupId: String
    /// Distinguishes this group from a deleted one of the same id (timers check it).
    let incarnation: UInt64
    private(set) var state: GroupState = .empty
    /// When the state last changed (offset expiry counts from the moment a group became empty).
    private(set) var stateChangedMillis: Int64
    var generationId: Int32 = 0
    var protocolType: String?
    /// The protocol selected for the current generation.
    var protocolName: String?
    var leaderId: String?
    private(set) var members: [String: GroupMember] = [:]
    /// `group.instance.id` → member id of static members.
    private(set) var staticMembers: [String: String] = [:]
    /// Member ids handed out with MEMBER_ID_REQUIRED whose owners have not joined yet.
    /// A rebalance waits for them too.
    var pendingMembers: Set<String> = []
    /// Members of the current generation that have not sent SyncGroup yet.
    var pendingSync: Set<String> = []
    /// Increases with every rebalance; timers of an older round do nothing.
    var rebalanceRound: UInt64 = 0
    /// A rebalance completes at this time even if members have not rejoined.
    var rebalanceDeadlineMillis: Int64 = 0
    /// The first rebalance of an empty group waits until this time for more members.
    var initialDelayDeadlineMillis: Int64?
    private var nextSequence: UInt64 = 0

    init(groupId: String, incarnation: UInt64, nowMillis: Int64) {
        self.groupId = groupId
        self.incarnation = incarnation
        self.stateChangedMillis = nowMillis
    }

    func transition(to next: GroupState, nowMillis: Int64) {
        assert(Self.allowed(from: state).contains(next), "group \(groupId): \(state) → \(next) is not a legal transition")
        state = next
        stateChangedMillis = nowMillis
    }

    /// Kafka's transition table.
    static func allowed(from state: GroupState) -> Set<GroupState> {
        switch state {
        case .empty: [.preparingRebalance, .dead]
        case .preparingRebalance: [.completingRebalance, .empty, .dead]
        case .completingRebalance: [.preparingRebalance, .stable, .dead]
        case .stable: [.preparingRebalance, .dead]
        case .dead: [.dead]
        }
    }

    var isEmpty: Bool { members.isEmpty }
    var size: Int { members.count + pendingMembers.count }

    func makeSequence() -> UInt64 {
        nextSequence += 1
        return nextSequence
    }

    func add(_ member: GroupMember) {
        precondition(members[member.memberId] == nil, "member \(member.memberId) joined twice")
        if members.isEmpty { protocolType = member.protocolType }
        members[member.memberId] = member
        if let instance = member.groupInstanceId { staticMembers[instance] = member.memberId }
        if leaderId == nil { leaderId = member.memberId }
    }

    /// Removes a member; a new leader is the oldest remaining member, preferring one that is rejoining.
    func remove(_ memberId: String) -> GroupMember? {
        guard let member = members.removeValue(forKey: memberId) else { return nil }
        if let instance = member.groupInstanceId, staticMembers[instance] == memberId {
            staticMembers.removeValue(forKey: instance)
        }
        pendingSync.remove(memberId)
        if leaderId == memberId {
            leaderId = electLeader()
        }
        return member
    }

    /// Gives a static member a new member id (a restarted static member takes its old slot).
    func replaceStaticMember(_ instanceId: String, oldMemberId: String, newMemberId: String) -> GroupMember {
        guard let member = members.removeValue(forKey: oldMemberId) else {
            preconditionFailure("static member \(instanceId) maps to missing member \(oldMemberId)")
        }
        member.memberId = newMemberId
        members[newMemberId] = member
        staticMembers[instanceId] = newMemberId
        if leaderId == oldMemberId { leaderId = newMemberId }
        if pendingSync.remove(oldMemberId) != nil { pendingSync.insert(newMemberId) }
        return member
    }

    /// The oldest member that is rejoining, else the oldest member.
    func electLeader() -> String? {
        let byAge = members.values.sorted { $0.sequence < $1.sequence }
        return (byAge.first { $0.awaitingJoin != nil } ?? byAge.first)?.memberId
    }

    /// A request naming `groupInstanceId` whose member id is not the one that instance holds now.
    func isStaticMemberFenced(memberId: String, groupInstanceId: String?) -> Bool {
        guard let instance = groupInstanceId, let current = staticMembers[instance] else { return false }
        return current != memberId
    }

    func staticMemberId(_ groupInstanceId: String) -> String? { staticMembers[groupInstanceId] }

    /// Every member (and no pending one) is waiting in JoinGroup.
    var allMembersJoined: Bool {
        pendingMembers.isEmpty && members.values.allSatisfy { $0.awaitingJoin != nil }
    }

    /// Members in join order.
    var membersInOrder: [GroupMember] { members.values.sorted { $0.sequence < $1.sequence } }

    /// Whether a member offering these protocols may join: the type must match and
    /// one of the protocols must be supported by every current member.
    func supports(protocolType: String, protocols: [GroupCoordinator.MemberProtocol]) -> Bool {
        guard !protocolType.isEmpty, !protocols.isEmpty else { return false }
        if members.isEmpty { return true }
        guard protocolType == self.protocolType else { return false }
        let everyone = commonProtocols(of: Array(members.values))
        return protocols.contains { everyone.contains($0.name) }
    }

    /// The protocol for the next generation: among those every member supports, the one
    /// most members put first (Kafka's vote); ties go to the lexicographically smallest name.
    func selectProtocol() -> String? {
        var voters = Array(members.values)
        var candidates = commonProtocols(of: voters)
        if candidates.isEmpty {
            // Static members that did not rejoin may still offer old protocols: let those who joined decide.
            voters = voters.filter { $0.awaitingJoin != nil }
            candidates = commonProtocols(of: voters)
        }
        if candidates.isEmpty { return members[leaderId ?? ""]?.protocols.first?.name }
        var votes: [String: Int] = [:]
        for member in voters {
            if let choice = member.vote(among: candidates) { votes[choice, default: 0] += 1 }
        }
        return votes.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key
    }

    private func commonProtocols(of members: [GroupMember]) -> Set<String> {
        guard let first = members.first else { return [] }
        var common = Set(first.protocols.map(\.name))
        for member in members.dropFirst() { common.formIntersection(member.protocols.map(\.name)) }
        return common
    }

    /// Largest rebalance timeout among the members (how long a rebalance waits for rejoins).
    var rebalanceTimeoutMillis: Int64 {
        members.values.map(\.rebalanceTimeoutMillis).max() ?? 0
    }
}

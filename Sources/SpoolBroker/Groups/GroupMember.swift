/// One member of a consumer group, as the coordinator keeps it.
/// Not thread-safe: guarded by the coordinator's lock.
final class GroupMember {
    typealias JoinCompletion = @Sendable (Result<GroupCoordinator.JoinResult, GroupCoordinatorError>) -> Void
    typealias SyncCompletion = @Sendable (Result<GroupCoordinator.SyncResult, GroupCoordinatorError>) -> Void

    var memberId: String
    let groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var sessionTimeoutMillis: Int64
    var rebalanceTimeoutMillis: Int64
    var protocolType: String
    var protocols: [GroupCoordinator.MemberProtocol]
    /// The leader's assignment for this member in the current generation.
    var assignment: [UInt8] = []
    /// Set while the member's JoinGroup is held by the rebalance barrier.
    var awaitingJoin: JoinCompletion?
    /// Set while the member's SyncGroup waits for the leader's.
    var awaitingSync: SyncCompletion?
    var lastHeartbeatMillis: Int64
    /// Join order within the group: leader election and the leader's member list follow it.
    let sequence: UInt64

    init(memberId: String, request: GroupCoordinator.JoinRequest, sequence: UInt64, nowMillis: Int64) {
        self.memberId = memberId
        self.groupInstanceId = request.groupInstanceId
        self.clientId = request.clientId
        self.clientHost = request.clientHost
        self.sessionTimeoutMillis = Int64(request.sessionTimeoutMillis)
        self.rebalanceTimeoutMillis = Int64(request.rebalanceTimeoutMillis)
        self.protocolType = request.protocolType
        self.protocols = request.protocols
        self.sequence = sequence
        self.lastHeartbeatMillis = nowMillis
    }

    /// Takes the settings of a rejoin.
    func update(from request: GroupCoordinator.JoinRequest) {
        clientId = request.clientId
        clientHost = request.clientHost
        sessionTimeoutMillis = Int64(request.sessionTimeoutMillis)
        rebalanceTimeoutMillis = Int64(request.rebalanceTimeoutMillis)
        protocolType = request.protocolType
        protocols = request.protocols
    }

    /// The same protocols, in the same order, with the same metadata.
    func matches(_ protocols: [GroupCoordinator.MemberProtocol]) -> Bool {
        self.protocols == protocols
    }

    func metadata(for protocolName: String?) -> [UInt8] {
        protocols.first { $0.name == protocolName }?.metadata ?? []
    }

    /// This member's favourite among `candidates` (its first protocol that every member supports).
    func vote(among candidates: Set<String>) -> String? {
        protocols.first { candidates.contains($0.name) }?.name
    }
}

import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol

/// A consumer's membership in a consumer group: Kafka's classic group protocol
/// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) over Spool's native protocol, with
/// the assignment computed by the group's leader, client side, as Kafka's clients do
/// (``RangeAssignor``; payloads in Kafka's ``ConsumerProtocol`` format, so Spool and
/// Kafka consumers can share a group).
///
/// `start()` joins and takes the first assignment; a background task then heartbeats
/// every `heartbeatIntervalMillis` and, when the broker says the group is rebalancing
/// (a member joined, left, or stopped heartbeating), revokes every partition (the
/// eager protocol), rejoins, and takes the new assignment — each step reported to
/// `onRebalance`. `leave()` hands the partitions back at once.
///
/// Every call goes to the group's coordinator (`BrokerRouter.groupCall`: found with
/// FindCoordinator, found again when it moves). Membership is not replicated: after the
/// coordinator moves, the new one answers UNKNOWN_MEMBER_ID and the member rejoins, the
/// partitions resuming from the committed offsets, which are.
///
/// Usually driven through ``SpoolConsumer/subscribe(topics:group:from:config:onRebalance:)``.
public final class GroupMembership: Sendable {
    /// Timings and identity; defaults follow Kafka's consumer except where noted.
    public struct Config: Sendable {
        /// Without a heartbeat for this long the broker drops the member and the group
        /// rebalances. Kafka: `session.timeout.ms` (45 s); shorter here so that a stopped
        /// consumer's partitions move on quickly. The broker allows 6 s to 30 min.
        public var sessionTimeoutMillis: UInt32 = 10_000
        /// How long a rebalance waits for this member to rejoin. Kafka: `max.poll.interval.ms` (5 min).
        public var rebalanceTimeoutMillis: UInt32 = 30_000
        /// Kafka: `heartbeat.interval.ms` (3 s); well under the session timeout.
        public var heartbeatIntervalMillis: UInt32 = 3_000
        /// Static membership: a restarted process with the same id gets its partitions
        /// back without a rebalance, and does not leave the group when it stops. Kafka: `group.instance.id`.
        public var groupInstanceId: String?
        /// Shown by DescribeGroups and part of the member id. Kafka: `client.id`.
        public var clientId = "spool-consumer"
        /// Pause before rejoining after the coordinator was unavailable. Kafka: `retry.backoff.ms` (100).
        public var retryBackoffMillis: UInt32 = 100
        /// Join rounds in a row that may fail before a join gives up.
        public var maxJoinAttempts = 50

        public init() {}
    }

    /// Partitions by topic.
    public typealias Assignment = [String: [Int32]]

    /// What a rebalance did to this member.
    public enum RebalanceEvent: Sendable, Equatable {
        /// These partitions are no longer this member's (before it rejoins, and when it leaves).
        case revoked(Assignment)
        /// The member's partitions in the new generation.
        case assigned(Assignment, generationId: Int32)
    }

    public let group: String
    public let topics: [String]
    public let config: Config
    /// Where the group calls go (its bootstrap connection for topic descriptions).
    let router: BrokerRouter
    /// Made from a connection: `leave()` closes the connections its own router opened.
    private let ownsRouter: Bool
    var connection: SpoolConnection { router.bootstrap }
    let onRebalance: @Sendable (RebalanceEvent) async throws -> Void

    struct State {
        var memberId = ""
        var generationId: Int32 = -1
        var assignment: Assignment = [:]
        var failure: GroupMembershipError?
        var stopped = false
        var heartbeats: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    /// A membership whose calls find the coordinator from `connection`'s broker.
    public convenience init(
        connection: SpoolConnection, group: String, topics: [String], config: Config = Config(),
        onRebalance: @escaping @Sendable (RebalanceEvent) async throws -> Void
    ) {
        self.init(router: BrokerRouter(connection: connection), ownsRouter: true, group: group, topics: topics, config: config,
                  onRebalance: onRebalance)
    }

    /// A membership whose calls go to the group's coordinator over `router`'s connections
    /// (`router` stays the caller's).
    public convenience init(
        router: BrokerRouter, group: String, topics: [String], config: Config = Config(),
        onRebalance: @escaping @Sendable (RebalanceEvent) async throws -> Void
    ) {
        self.init(router: router, ownsRouter: false, group: group, topics: topics, config: config, onRebalance: onRebalance)
    }

    private init(
        router: BrokerRouter, ownsRouter: Bool, group: String, topics: [String], config: Config,
        onRebalance: @escaping @Sendable (RebalanceEvent) async throws -> Void
    ) {
        self.router = router
        self.ownsRouter = ownsRouter
        self.group = group
        self.topics = topics
        self.config = config
        self.onRebalance = onRebalance
    }

    /// The member id and generation of the current assignment (-1 before the first).
    public var generation: (memberId: String, generationId: Int32) {
        state.withLockedValue { ($0.memberId, $0.generationId) }
    }

    /// The partitions this member owns now.
    public var assignment: Assignment { state.withLockedValue { $0.assignment } }

    /// Why the membership ended (fenced, refused), if it did.
    public var failure: GroupMembershipError? { state.withLockedValue { $0.failure } }

    /// Joins the group, takes the first assignment, and starts heartbeating.
    public func start() async throws {
        try await rebalance()
        let task = Task { [self] in await heartbeatLoop() }
        let stoppedMeanwhile = state.withLockedValue { s -> Bool in
            s.heartbeats = task
            return s.stopped
        }
        if stoppedMeanwhile { task.cancel() }
    }

    /// Stops heartbeating, revokes the partitions and leaves the group, so that the
    /// others take them over at once (a static member keeps its slot: it does not leave).
    public func leave() async {
        let (task, owned) = state.withLockedValue { s -> (Task<Void, Never>?, Assignment) in
            s.stopped = true
            defer { s.heartbeats = nil; s.assignment = [:] }
            return (s.heartbeats, s.assignment)
        }
        task?.cancel()
        if !owned.isEmpty { try? await onRebalance(.revoked(owned)) }
        defer { if ownsRouter { Task { [router] in await router.close() } } }
        let memberId = state.withLockedValue { $0.memberId }
        guard !memberId.isEmpty, config.groupInstanceId == nil else { return }
        var request = Spool_V1_LeaveGroupRequest()
        request.group = group
        var me = Spool_V1_MemberIdentity()
        me.memberID = memberId
        request.members = [me]
        // Retried for at most a session: by then the coordinator has dropped the member anyway.
        let window = min(Int(config.sessionTimeoutMillis), connection.config.requestTimeoutMillis)
        let _: Spool_V1_LeaveGroupResponse? = try? await router.groupCall(group, retryWithinMillis: window, groupError: { $0.error }) {
            try await $0.call(.leaveGroup, request)
        }
    }

    /// Commits offsets as a member of the current generation. Throws
    /// ``GroupMembershipError`` when the group refuses (`isRebalance`: a rebalance
    /// moved on; the records are read again by the partition's next owner).
    public func commit(_ offsets: [(topic: String, partition: Int32, offset: Int64)]) async throws {
        guard !offsets.isEmpty else { return }
        let (memberId, generationId) = generation
        guard generationId >= 0 else { throw GroupMembershipError(.rebalanceInProgress, "not a member of a generation yet") }
        var request = Spool_V1_CommitOffsetsRequest()
        request.group = group
        request.generationID = generationId
        request.memberID = memberId
        request.groupInstanceID = config.groupInstanceId ?? ""
        request.offsets = Spool_V1_GroupOffset.list(offsets)
        let response: Spool_V1_CommitOffsetsResponse = try await router.groupCall(group, groupError: { $0.error }) {
            try await $0.call(.commitOffsets, request)
        }
        if response.error != .none { throw GroupMembershipError.from(response.error, response.message) }
    }

    // MARK: Rebalancing

    /// Revokes what this member owns, joins the next generation, takes its assignment.
    private func rebalance() async throws {
        let owned = state.withLockedValue { s -> Assignment in
            defer { s.assignment = [:] }
            return s.assignment
        }
        if !owned.isEmpty { try await onRebalance(.revoked(owned)) }
        let (generationId, memberId, assignment) = try await joinAndSync()
        let stopped = state.withLockedValue { s -> Bool in
            guard !s.stopped else { return true }
            s.generationId = generationId
            s.memberId = memberId
            s.assignment = assignment
            return false
        }
        guard !stopped else { throw GroupMembershipError(.stopped, "left the group while joining") }
        try await onRebalance(.assigned(assignment, generationId: generationId))
    }

    private func checkRunning() throws {
        if state.withLockedValue({ $0.stopped }) { throw GroupMembershipError(.stopped, "the membership was stopped") }
    }

    /// One JoinGroup + SyncGroup round, repeated while the broker asks for a rejoin.
    private func joinAndSync() async throws -> (Int32, String, Assignment) {
        var attempts = 0
        while true {
            try checkRunning()
            attempts += 1
            guard attempts <= config.maxJoinAttempts else {
                throw GroupMembershipError(.joinFailed, "could not join group \(group) in \(config.maxJoinAttempts) attempts")
            }
            var join = Spool_V1_JoinGroupRequest()
            join.group = group
            join.memberID = state.withLockedValue { $0.memberId }
            join.groupInstanceID = config.groupInstanceId ?? ""
            join.clientID = config.clientId
            join.sessionTimeoutMs = config.sessionTimeoutMillis
            join.rebalanceTimeoutMs = config.rebalanceTimeoutMillis
            join.protocolType = ConsumerProtocol.protocolType
            var range = Spool_V1_GroupProtocol()
            range.name = RangeAssignor.name
            range.metadata = .init(ConsumerProtocol.encodeSubscription(topics: topics))
            join.protocols = [range]
            let joined: Spool_V1_JoinGroupResponse = try await router.groupCall(group, groupError: { $0.error }) {
                try await $0.call(.joinGroup, join)
            }
            switch joined.error {
            case .none:
                break
            case .memberIDRequired:
                state.withLockedValue { $0.memberId = joined.memberID }
                continue
            case .unknownMemberID:
                state.withLockedValue { $0.memberId = "" }
                continue
            case .rebalanceInProgress, .illegalGeneration:
                continue
            case .coordinatorNotAvailable:
                try await Task.sleep(for: .milliseconds(Int(config.retryBackoffMillis)))
                continue
            default:
                throw GroupMembershipError.from(joined.error, joined.message)
            }
            state.withLockedValue { $0.memberId = joined.memberID }
            var sync = Spool_V1_SyncGroupRequest()
            sync.group = group
            sync.generationID = joined.generationID
            sync.memberID = joined.memberID
            sync.groupInstanceID = config.groupInstanceId ?? ""
            if joined.leaderID == joined.memberID {
                sync.assignments = try await assign(joined.members)
            }
            let synced: Spool_V1_SyncGroupResponse = try await router.groupCall(group, groupError: { $0.error }) {
                try await $0.call(.syncGroup, sync)
            }
            switch synced.error {
            case .none:
                return (joined.generationID, joined.memberID, try ConsumerProtocol.decodeAssignment(Array(synced.assignment)))
            case .unknownMemberID:
                state.withLockedValue { $0.memberId = "" }
            case .rebalanceInProgress, .illegalGeneration:
                break
            case .coordinatorNotAvailable:
                try await Task.sleep(for: .milliseconds(Int(config.retryBackoffMillis)))
            default:
                throw GroupMembershipError.from(synced.error, synced.message)
            }
        }
    }

    /// The leader's job: every member's partitions, by the range assignor.
    private func assign(_ members: [Spool_V1_JoinedMember]) async throws -> [Spool_V1_MemberAssignment] {
        var subscriptions: [String: [String]] = [:]
        for m in members {
            // A member whose metadata cannot be read subscribes to nothing (and gets nothing).
            subscriptions[m.memberID] = (try? ConsumerProtocol.decodeSubscription(Array(m.metadata))) ?? []
        }
        let admin = SpoolAdmin(connection)
        var counts: [String: Int32] = [:]
        for topic in Set(subscriptions.values.flatMap { $0 }) {
            do {
                counts[topic] = Int32(try await admin.describeTopic(topic).partitions.count)
            } catch let error as SpoolStatusError where error.code == .notFound {
                continue // not created yet: nothing to assign
            }
        }
        return RangeAssignor.assign(subscriptions: subscriptions, partitionCounts: counts).sorted { $0.key < $1.key }.map { member, partitions in
            var a = Spool_V1_MemberAssignment()
            a.memberID = member
            a.assignment = .init(ConsumerProtocol.encodeAssignment(partitions))
            return a
        }
    }

    // MARK: Heartbeats

    private func heartbeatLoop() async {
        var lastHeard = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(Int(config.heartbeatIntervalMillis)))
                try checkRunning()
                if ContinuousClock.now - lastHeard > .milliseconds(Int(config.sessionTimeoutMillis)) {
                    // Unheard for a whole session: the broker has given the partitions to others by now.
                    // Stop reading them (Kafka's "partitions lost") and join again as a new member.
                    state.withLockedValue { $0.memberId = "" }
                    lastHeard = .now
                    try await rebalance()
                    continue
                }
                let fine = try await heartbeat()
                lastHeard = .now
                if fine { continue }
                try await rebalance()
                lastHeard = .now
            } catch let error as GroupMembershipError where error.code == .stopped {
                return
            } catch let error as GroupMembershipError where error.code == .fencedInstanceId || error.code == .refused || error.code == .joinFailed {
                state.withLockedValue { $0.failure = error }
                return
            } catch is CancellationError {
                return
            } catch {
                // The connection or a rebalance callback failed: try again after the next interval;
                // after a whole session without an answer the partitions are given up (above).
                continue
            }
        }
    }

    /// True while the member is fine; false when it must rejoin.
    private func heartbeat() async throws -> Bool {
        let (memberId, generationId) = generation
        var request = Spool_V1_HeartbeatRequest()
        request.group = group
        request.generationID = generationId
        request.memberID = memberId
        request.groupInstanceID = config.groupInstanceId ?? ""
        // Retried for at most a session: after that the member is gone anyway (heartbeatLoop rejoins).
        let window = min(Int(config.sessionTimeoutMillis), connection.config.requestTimeoutMillis)
        let response: Spool_V1_HeartbeatResponse = try await router.groupCall(group, retryWithinMillis: window, groupError: { $0.error }) {
            try await $0.call(.heartbeat, request)
        }
        switch response.error {
        case .none, .coordinatorNotAvailable:
            return true
        case .rebalanceInProgress, .illegalGeneration:
            return false
        case .unknownMemberID:
            state.withLockedValue { $0.memberId = "" }
            return false
        default:
            throw GroupMembershipError.from(response.error, response.message)
        }
    }
}

import SpoolRecords
import SpoolStorage

// The coordinator's calls and answers, independent of any wire format: each
// listener decodes its own requests into these and encodes these back.
extension GroupCoordinator {
    /// One protocol a member offers (e.g. "range" with its subscription as metadata).
    public struct MemberProtocol: Hashable, Sendable {
        public var name: String
        public var metadata: [UInt8]

        public init(name: String, metadata: [UInt8]) {
            self.name = name
            self.metadata = metadata
        }
    }

    /// JoinGroup.
    public struct JoinRequest: Sendable {
        public var groupId: String
        /// Empty for a member joining for the first time.
        public var memberId: String
        /// `group.instance.id` of a static member.
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        public var sessionTimeoutMillis: Int32
        /// How long a rebalance may wait for this member to rejoin (JoinGroup v0: the session timeout).
        public var rebalanceTimeoutMillis: Int32
        /// "consumer" for consumers; members of one group must agree.
        public var protocolType: String
        /// In the member's order of preference.
        public var protocols: [MemberProtocol]
        /// A new dynamic member gets `memberIdRequired` and must rejoin with the id given
        /// (Kafka JoinGroup v4+).
        public var requireKnownMemberId: Bool

        public init(
            groupId: String, memberId: String = "", groupInstanceId: String? = nil, clientId: String = "", clientHost: String = "",
            sessionTimeoutMillis: Int32, rebalanceTimeoutMillis: Int32, protocolType: String = "consumer",
            protocols: [MemberProtocol], requireKnownMemberId: Bool = true
        ) {
            self.groupId = groupId
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.clientId = clientId
            self.clientHost = clientHost
            self.sessionTimeoutMillis = sessionTimeoutMillis
            self.rebalanceTimeoutMillis = rebalanceTimeoutMillis
            self.protocolType = protocolType
            self.protocols = protocols
            self.requireKnownMemberId = requireKnownMemberId
        }
    }

    /// A member as the leader sees it in its JoinGroup answer.
    public struct JoinedMember: Hashable, Sendable {
        public var memberId: String
        public var groupInstanceId: String?
        /// The member's metadata for the selected protocol.
        public var metadata: [UInt8]
    }

    /// The answer to JoinGroup once the generation is formed.
    public struct JoinResult: Hashable, Sendable {
        public var generationId: Int32
        public var protocolType: String?
        public var protocolName: String?
        public var leaderId: String
        public var memberId: String
        /// Every member with its metadata for the leader, in join order; empty for followers.
        public var members: [JoinedMember]

        /// Whether this member must compute the assignment.
        public var isLeader: Bool { leaderId == memberId }
    }

    /// SyncGroup.
    public struct SyncRequest: Sendable {
        public var groupId: String
        public var generationId: Int32
        public var memberId: String
        public var groupInstanceId: String?
        /// When given (SyncGroup v5+), must match the group's.
        public var protocolType: String?
        public var protocolName: String?
        /// The leader's assignment per member id; empty for followers.
        public var assignments: [String: [UInt8]]

        public init(
            groupId: String, generationId: Int32, memberId: String, groupInstanceId: String? = nil,
            protocolType: String? = nil, protocolName: String? = nil, assignments: [String: [UInt8]] = [:]
        ) {
            self.groupId = groupId
            self.generationId = generationId
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.protocolType = protocolType
            self.protocolName = protocolName
            self.assignments = assignments
        }
    }

    /// The answer to SyncGroup: this member's assignment (empty bytes when the leader gave none).
    public struct SyncResult: Hashable, Sendable {
        public var protocolType: String?
        public var protocolName: String?
        public var assignment: [UInt8]
    }

    /// A member named in LeaveGroup: by member id, by `group.instance.id`, or both.
    public struct MemberIdentity: Hashable, Sendable {
        public var memberId: String
        public var groupInstanceId: String?

        public init(memberId: String, groupInstanceId: String? = nil) {
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
        }
    }

    /// What LeaveGroup did for one member: nil error when it left.
    public struct LeaveResult: Hashable, Sendable {
        public var member: MemberIdentity
        public var error: GroupCoordinatorError.Code?
    }

    /// OffsetCommit. A member of a generation passes its generation and member id;
    /// a consumer outside any generation (assign mode) passes -1 and "".
    public struct CommitRequest: Sendable {
        public var groupId: String
        public var generationId: Int32
        public var memberId: String
        public var groupInstanceId: String?
        public var offsets: [TopicPartition: OffsetAndMetadata]

        public init(
            groupId: String, generationId: Int32 = -1, memberId: String = "", groupInstanceId: String? = nil,
            offsets: [TopicPartition: OffsetAndMetadata]
        ) {
            self.groupId = groupId
            self.generationId = generationId
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.offsets = offsets
        }
    }

    /// One partition's offset to commit.
    public struct OffsetAndMetadata: Hashable, Sendable {
        public var offset: Int64
        public var metadata: String

        public init(offset: Int64, metadata: String = "") {
            self.offset = offset
            self.metadata = metadata
        }
    }

    /// One partition's committed offset; `offset` is -1 when nothing is committed.
    public struct FetchedOffset: Hashable, Sendable {
        public var partition: TopicPartition
        public var offset: Int64
        public var metadata: String
        public var commitTimestamp: Int64
    }

    /// A line of ListGroups.
    public struct GroupOverview: Hashable, Sendable {
        public var groupId: String
        /// Empty for groups that only hold offsets.
        public var protocolType: String
        public var state: GroupState
    }

    /// A member as DescribeGroups shows it. Metadata and assignment are empty unless the group is stable.
    public struct MemberDescription: Hashable, Sendable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        public var metadata: [UInt8]
        public var assignment: [UInt8]
    }

    /// DescribeGroups for one group.
    public struct GroupDescription: Hashable, Sendable {
        public var groupId: String
        public var state: GroupState
        public var protocolType: String
        /// The selected protocol; empty unless the group is stable.
        public var protocolName: String
        public var generationId: Int32
        public var leaderId: String?
        public var members: [MemberDescription]
    }

    /// What DeleteGroups did for one group: nil error when it was deleted.
    public struct DeleteResult: Hashable, Sendable {
        public var groupId: String
        public var error: GroupCoordinatorError.Code?
    }
}

/// Why the group coordinator refused a call.
///
/// Each listener maps the code to its own wire codes (the Kafka listener to Kafka's
/// error codes, named alike; the native listener to status codes). Match on
/// `code`, never on `message`.
public struct GroupCoordinatorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of refusal; the names follow Kafka's error names.
    public enum Code: String, Hashable, Sendable {
        /// The member id is not (or no longer) a member of the group.
        case unknownMemberId
        /// The generation is not the group's current one.
        case illegalGeneration
        /// The group is rebalancing: rejoin (heartbeat) or retry later (commit).
        case rebalanceInProgress
        /// A new dynamic member must rejoin with the member id carried in `memberId`.
        case memberIdRequired
        /// The protocol type or protocols do not fit the group's members.
        case inconsistentGroupProtocol
        /// Another member now holds this `group.instance.id`.
        case fencedInstanceId
        /// The session timeout is outside the coordinator's allowed range.
        case invalidSessionTimeout
        /// DeleteGroups on a group that still has members.
        case nonEmptyGroup
        /// The group does not exist.
        case groupIdNotFound
        /// The group id is empty or too long.
        case invalidGroupId
        /// The coordinator is shut down, or the group is being deleted.
        case coordinatorNotAvailable
        /// A committed partition does not exist.
        case unknownTopicOrPartition
        /// Commit metadata is over the limit.
        case offsetMetadataTooLarge
        /// A committed offset is negative.
        case invalidCommitOffset
        /// The group already has the most members allowed.
        case groupMaxSizeReached
        /// The durable offset store failed to write.
        case storageFailed
        /// OffsetDelete of a partition whose topic the group's members are subscribed to.
        case groupSubscribedToTopic
        /// Cluster mode: another broker coordinates the group (it leads the group's partition of
        /// the offsets topic); find the coordinator again.
        case notCoordinator
        /// Cluster mode: this broker just became the group's coordinator and is still reading
        /// its committed offsets from the offsets topic; retry shortly.
        case coordinatorLoadInProgress
    }

    public var code: Code
    public var message: String
    /// With `memberIdRequired`: the member id the client must rejoin with.
    public var memberId: String?

    public init(_ code: Code, _ message: String, memberId: String? = nil) {
        self.code = code
        self.message = message
        self.memberId = memberId
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

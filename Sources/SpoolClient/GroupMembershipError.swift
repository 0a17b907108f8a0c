import SpoolProtocol

/// Why group membership failed, or a member's commit was refused. Match on `code`.
public struct GroupMembershipError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// The group is rebalancing: the commit was refused; the records go to the partitions' next owners (at least once).
        case rebalanceInProgress
        /// This member's generation is over (it rejoins by itself).
        case illegalGeneration
        /// The broker no longer knows this member (it rejoins by itself).
        case unknownMemberId
        /// Another process took this member's `group.instance.id`: the membership is over.
        case fencedInstanceId
        /// The members disagree on the protocol, or the settings are refused (session timeout, group id).
        case refused
        /// Joining kept failing `maxJoinAttempts` times in a row.
        case joinFailed
        /// The membership was stopped.
        case stopped
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether a refused commit just means "a rebalance moved on": nothing to do but go on polling.
    public var isRebalance: Bool { code == .rebalanceInProgress || code == .illegalGeneration || code == .unknownMemberId }

    public var description: String { "\(code.rawValue): \(message)" }

    static func from(_ error: Spool_V1_GroupError, _ message: String) -> GroupMembershipError {
        switch error {
        case .rebalanceInProgress: GroupMembershipError(.rebalanceInProgress, message)
        case .illegalGeneration: GroupMembershipError(.illegalGeneration, message)
        case .unknownMemberID: GroupMembershipError(.unknownMemberId, message)
        case .fencedInstanceID: GroupMembershipError(.fencedInstanceId, message)
        default: GroupMembershipError(.refused, "\(error): \(message)")
        }
    }
}

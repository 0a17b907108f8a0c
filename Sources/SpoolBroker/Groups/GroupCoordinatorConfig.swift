import SpoolStorage

/// Limits and timings of the group coordinator, with Kafka's defaults.
public struct GroupCoordinatorConfig: Sendable {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    public var minSessionTimeoutMillis: Int32 = 6_000
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    public var maxSessionTimeoutMillis: Int32 = 1_800_000
    /// How long the first rebalance of an empty group waits for more members, each
    /// new member extending it, up to the rebalance timeout (`group.initial.rebalance.delay.ms`).
    public var initialRebalanceDelayMillis: Int64 = 3_000
    /// Members (joined or holding a MEMBER_ID_REQUIRED id) per group (`group.max.size`).
    public var maxMembersPerGroup = 1_000
    /// Groups with membership state held in memory at once; a JoinGroup that would
    /// create one more is answered `coordinatorNotAvailable` (retry later). Empty
    /// groups without offsets are forgotten by every retention check.
    public var maxGroups = 100_000
    /// Committed offsets of a group without members expire this long after the
    /// group became empty or its last commit, whichever is later (`offsets.retention.minutes`, 7 days).
    public var offsetsRetentionMillis: Int64 = 7 * 24 * 60 * 60 * 1000
    /// How often expired offsets are looked for (`offsets.retention.check.interval.ms`).
    public var offsetsRetentionCheckIntervalMillis: Int64 = 600_000
    /// Largest commit metadata string, in UTF-8 bytes (`offset.metadata.max.bytes`).
    public var maxCommitMetadataBytes = OffsetStore.maxMetadataBytes
    /// Longest group id, in UTF-8 bytes.
    public var maxGroupIdBytes = OffsetStore.maxGroupNameBytes

    public init() {}
}

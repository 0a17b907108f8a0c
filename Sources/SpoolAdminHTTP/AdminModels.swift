import SpoolRecords

// The JSON documents of the admin API (`/v1/…`). Field names are the API: the
// console and `spool broker info` read them; add fields, never rename.

/// `GET /v1/broker`: the broker's identity and health.
public struct BrokerInfoView: Codable, Sendable {
    public var version: String
    public var startedAtMillis: Int64
    public var uptimeSeconds: Double
    public var dataDirectory: String
    public var diskFreeBytes: Int64?
    public var diskTotalBytes: Int64?
    public var listeners: [ListenerView]
    public var ready: Bool
    public var topics: Int
    public var partitions: Int
    public var partitionsStopped: Int
    public var openDescriptors: Int
    public var descriptorLimit: Int
    public var segmentFilesOpen: Int
    public var segmentFilesBudget: Int
    public var recordsIn: Int64
    public var recordsOut: Int64
    public var bytesIn: Int64
    public var bytesOut: Int64
    /// Background tasks failing persistently, one sentence each (empty: not degraded).
    /// Optional so that an older broker's answer still decodes.
    public var degraded: [String]?
}

/// One listener of the broker: what it speaks and where.
public struct ListenerView: Codable, Sendable, Hashable {
    /// `native`, `kafka` or `admin-http`.
    public var name: String
    /// HOST:PORT it is bound to.
    public var address: String

    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }
}

/// `GET /v1/topics` (a list) and `GET /v1/topics/NAME`.
public struct TopicView: Codable, Sendable {
    public var name: String
    public var partitions: [PartitionView]
    /// The effective configuration (defaults merged with the topic's overrides).
    public var configs: [String: String]
    /// Only the keys set for this topic.
    public var overrides: [String: String]
    public var sizeBytes: Int64
    /// Records in the log now (sum over partitions of end − start).
    public var records: Int64
    public var recordsIn: Int64
    public var recordsOut: Int64
    public var bytesIn: Int64
    public var bytesOut: Int64
}

/// One partition of a topic.
public struct PartitionView: Codable, Sendable {
    public var partition: Int32
    public var startOffset: Int64
    public var endOffset: Int64
    public var sizeBytes: Int64
    public var segments: Int
    /// True when the partition refuses appends after a failed write or fsync.
    public var stopped: Bool
    public var error: String?
}

/// `GET /v1/groups` (a list) and `GET /v1/groups/NAME`.
public struct GroupView: Codable, Sendable {
    public var group: String
    /// Kafka's group states (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead).
    public var state: String
    public var generation: Int32?
    public var protocolName: String?
    public var members: [GroupMemberView]
    public var offsets: [GroupOffsetView]
    public var totalLag: Int64
}

/// A member of a consumer group and the partitions assigned to it.
public struct GroupMemberView: Codable, Sendable {
    public var memberId: String
    public var clientId: String
    public var clientHost: String
    public var assignment: [TopicPartitionView]
}

/// A topic and a partition.
public struct TopicPartitionView: Codable, Sendable, Hashable {
    public var topic: String
    public var partition: Int32
}

/// A group's committed offset for one partition, and how far behind the log end it is.
public struct GroupOffsetView: Codable, Sendable {
    public var topic: String
    public var partition: Int32
    public var committedOffset: Int64
    public var endOffset: Int64?
    public var lag: Int64?
    public var commitTimestampMillis: Int64
    public var metadata: String
}

/// `GET /v1/topics/NAME/partitions/P/records`: decoded records of one partition.
public struct RecordsView: Codable, Sendable {
    public var topic: String
    public var partition: Int32
    public var startOffset: Int64
    public var endOffset: Int64
    /// The first offset asked for.
    public var from: Int64
    /// The offset to ask for next (after the last record shown).
    public var next: Int64
    public var records: [RecordView]
    /// True when a limit (count or bytes) cut the answer short.
    public var limited: Bool
}

/// One record, for people: key and value as text when they are UTF-8, else hex.
public struct RecordView: Codable, Sendable {
    public var offset: Int64
    public var timestampMillis: Int64
    public var key: BytesView?
    public var value: BytesView?
    public var headers: [HeaderView]
}

/// Bytes shown as text (valid UTF-8 without control characters) or as hex.
public struct BytesView: Codable, Sendable {
    /// `text` or `hex`.
    public var encoding: String
    public var data: String
    /// The full length in bytes (`data` may hold only a prefix).
    public var length: Int
    public var truncated: Bool
}

/// A record header.
public struct HeaderView: Codable, Sendable {
    public var key: String
    public var value: BytesView?
}

/// The body of every error answer.
public struct ErrorView: Codable, Sendable {
    public var code: String
    public var message: String
}

/// `GET /v1/session`: who the requests act as (`User:<name>` once logged in, else
/// `User:ANONYMOUS`), and whether this listener asks for a login at all.
public struct SessionView: Codable, Sendable {
    public var principal: String
    public var loginRequired: Bool
}

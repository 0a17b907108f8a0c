import SpoolRecords

/// Per-topic settings, named and defaulted as in Kafka.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `segment.bytes` | 1 GiB | roll the active segment at this size |
/// | `segment.ms` | 7 days | roll the active segment after this age |
/// | `index.interval.bytes` | 4096 | bytes of log between offset-index entries |
/// | `retention.ms` | 7 days | delete closed segments whose newest record is older (-1: keep forever) |
/// | `retention.bytes` | -1 | delete the oldest closed segments while the partition is larger (-1: no limit) |
/// | `flush.messages` | -1 | fsync after this many messages (-1: leave it to the page cache) |
/// | `flush.ms` | -1 | fsync at least this often (-1: leave it to the page cache) |
/// | `compression.type` | producer | codec for batches the broker builds from loose records (`producer` means lz4 there) |
/// | `max.message.bytes` | 1 MiB + 12 | largest batch accepted |
/// | `linger.ms` | 5 | how long the broker accumulates loose records before closing a batch |
/// | `message.timestamp.difference.max.ms` | Long.MAX | largest distance between a record's create time and the broker's clock |
/// | `cleanup.policy` | delete | `delete`, `compact` or `compact,delete` (see `CleanupPolicy`) |
/// | `delete.retention.ms` | 1 day | how long a tombstone stays after the clean that first passed it |
/// | `min.cleanable.dirty.ratio` | 0.5 | clean when uncleaned bytes are at least this share of the closed segments |
/// | `min.compaction.lag.ms` | 0 | records younger than this are not compacted |
/// | `max.compaction.lag.ms` | Long.MAX | records older than this are compacted whatever the dirty ratio |
/// | `message.format.version` | 3.0-IV1 | accepted for compatibility; Spool always stores v2 batches |
///
/// `acks=all` on a produce request always fsyncs (with group commit) before answering,
/// whatever `flush.*` says.
public struct TopicConfig: Hashable, Sendable {
    public var segmentBytes: Int64 = 1 << 30
    public var segmentMillis: Int64 = 7 * 24 * 3_600_000
    public var indexIntervalBytes: Int = 4096
    public var retentionMillis: Int64 = 7 * 24 * 3_600_000
    public var retentionBytes: Int64 = -1
    public var flushMessages: Int64 = -1
    public var flushMillis: Int64 = -1
    /// nil: keep the producer's codec (and use lz4 for broker-built batches).
    public var compression: CompressionCodec? = nil
    public var maxMessageBytes: Int = (1 << 20) + 12
    public var lingerMillis: Int64 = 5
    /// Records whose create time is further than this from the broker's clock are refused.
    public var timestampDifferenceMaxMillis: Int64 = .max
    public var cleanupPolicy = CleanupPolicy.deleteOnly
    public var deleteRetentionMillis: Int64 = 86_400_000
    public var minCleanableDirtyRatio: Double = 0.5
    public var minCompactionLagMillis: Int64 = 0
    public var maxCompactionLagMillis: Int64 = .max
    /// Kept only to be shown back: every batch is stored as v2 whatever it says.
    public var messageFormatVersion = "3.0-IV1"

    public init() {}

    public static let keys = [
        "segment.bytes", "segment.ms", "index.interval.bytes", "retention.ms", "retention.bytes",
        "flush.messages", "flush.ms", "compression.type", "max.message.bytes", "linger.ms",
        "message.timestamp.difference.max.ms", "cleanup.policy", "delete.retention.ms", "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms", "max.compaction.lag.ms", "message.format.version",
    ]

    /// The defaults with `overrides` applied; unknown keys and bad values are errors.
    public init(_ overrides: [String: String], base: TopicConfig = TopicConfig()) throws {
        self = base
        for (key, value) in overrides.sorted(by: { $0.key < $1.key }) {
            try set(key, value)
        }
    }

    public mutating func set(_ key: String, _ value: String) throws {
        func int(_ range: ClosedRange<Int64>) throws -> Int64 {
            guard let v = Int64(value), range.contains(v) else {
                throw StorageError(.invalidConfig, "\(key)=\(value): expected an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        switch key {
        case "segment.bytes": segmentBytes = try int(1024...(Int64(UInt32.max)))
        case "segment.ms": segmentMillis = try int(1...Int64.max)
        case "index.interval.bytes": indexIntervalBytes = Int(try int(0...(1 << 30)))
        case "retention.ms": retentionMillis = try int(-1...Int64.max)
        case "retention.bytes": retentionBytes = try int(-1...Int64.max)
        case "flush.messages": flushMessages = try int(-1...Int64.max)
        case "flush.ms": flushMillis = try int(-1...Int64.max)
        case "max.message.bytes": maxMessageBytes = Int(try int(64...(1 << 30)))
        case "linger.ms": lingerMillis = try int(0...60_000)
        case "message.timestamp.difference.max.ms": timestampDifferenceMaxMillis = try int(0...Int64.max)
        case "cleanup.policy":
            guard let policy = CleanupPolicy(name: value) else {
                throw StorageError(.invalidConfig, "cleanup.policy=\(value): expected delete, compact or compact,delete")
            }
            cleanupPolicy = policy
        case "delete.retention.ms": deleteRetentionMillis = try int(0...Int64.max)
        case "min.compaction.lag.ms": minCompactionLagMillis = try int(0...Int64.max)
        case "max.compaction.lag.ms": maxCompactionLagMillis = try int(1...Int64.max)
        case "min.cleanable.dirty.ratio":
            guard let ratio = Double(value), ratio >= 0, ratio <= 1 else {
                throw StorageError(.invalidConfig, "min.cleanable.dirty.ratio=\(value): expected a number in 0...1")
            }
            minCleanableDirtyRatio = ratio
        case "message.format.version":
            // Kafka accepts 0.8.0 … 3.x (ignored since 3.0 with inter.broker.protocol.version ≥ 3.0).
            guard let first = value.first, first.isNumber, value.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" || $0.isLetter }) else {
                throw StorageError(.invalidConfig, "message.format.version=\(value): expected a Kafka version such as 2.8 or 3.0-IV1")
            }
            messageFormatVersion = value
        case "compression.type":
            if value == "producer" {
                compression = nil
            } else if let codec = CompressionCodec(name: value) {
                compression = codec
            } else {
                throw StorageError(.invalidConfig, "compression.type=\(value): expected producer, \(CompressionCodec.supportedNames)")
            }
        default:
            throw StorageError(.invalidConfig, "unknown topic config \(key); known: \(Self.keys.joined(separator: ", "))")
        }
    }

    /// Every setting as key=value strings (for describe and persistence).
    public var entries: [String: String] {
        [
            "segment.bytes": String(segmentBytes), "segment.ms": String(segmentMillis),
            "index.interval.bytes": String(indexIntervalBytes), "retention.ms": String(retentionMillis),
            "retention.bytes": String(retentionBytes), "flush.messages": String(flushMessages),
            "flush.ms": String(flushMillis), "compression.type": compression?.description ?? "producer",
            "max.message.bytes": String(maxMessageBytes), "linger.ms": String(lingerMillis),
            "message.timestamp.difference.max.ms": String(timestampDifferenceMaxMillis),
            "cleanup.policy": cleanupPolicy.description, "delete.retention.ms": String(deleteRetentionMillis),
            "min.cleanable.dirty.ratio": String(minCleanableDirtyRatio), "min.compaction.lag.ms": String(minCompactionLagMillis),
            "max.compaction.lag.ms": String(maxCompactionLagMillis), "message.format.version": messageFormatVersion,
        ]
    }
}

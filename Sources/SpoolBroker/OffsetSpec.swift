/// Which offset a ListOffsets lookup asks for.
public enum OffsetSpec: Sendable, Hashable {
    /// The log start offset.
    case earliest
    /// The log end offset (high watermark).
    case latest
    /// The earliest offset whose timestamp is at or after this time (ms since the epoch).
    case timestamp(Int64)
    /// The record with the largest timestamp (Kafka's `-3`, ListOffsets v7+).
    case maxTimestamp
}

/// What an offset lookup found: the offset and, for lookups by time, the timestamp of the
/// record found (-1 for earliest/latest, and with offset -1 when no record is that late).
public struct ListedOffset: Sendable, Hashable {
    public var offset: Int64
    public var timestamp: Int64

    public init(offset: Int64, timestamp: Int64 = -1) {
        self.offset = offset
        self.timestamp = timestamp
    }
}

/// A record found by time: its offset and its timestamp (ms since the epoch).
public struct TimestampedOffset: Sendable, Hashable {
    public var offset: Int64
    public var timestamp: Int64

    public init(offset: Int64, timestamp: Int64) {
        self.offset = offset
        self.timestamp = timestamp
    }
}

import NIOCore

/// A record header: a string key and an optional byte value.
public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }

    public init(key: String, value: String) {
        self.key = key
        self.value = ByteBuffer(string: value)
    }
}

/// One decoded record. Key and value are slices of the batch's (decompressed)
/// records buffer: reading them copies nothing.
public struct Record: Hashable, Sendable {
    /// Absolute offset in the partition (batch base offset + offset delta).
    public var offset: Int64
    /// Milliseconds since the Unix epoch.
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(offset: Int64, timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

import NIOCore

/// Kafka's consumer-group protocol payloads (protocol type "consumer"): what a member
/// subscribes to (its JoinGroup metadata) and what the leader assigns it (its SyncGroup
/// bytes), byte for byte as Kafka's clients write them, so that Spool consumers and
/// Kafka consumers can share one group.
///
/// Subscription v0: version i16, topics [string], user_data bytes. Later versions add
/// fields after these; they are read past. Assignment v0: version i16, partitions
/// [topic string, [i32]], user_data bytes. Strings are i16-length-prefixed UTF-8, arrays
/// i32-count-prefixed, bytes i32-length-prefixed (-1 for null).
public enum ConsumerProtocol {
    /// The protocol type every consumer group member announces.
    public static let protocolType = "consumer"
    /// Most topics or partitions a payload may list: a count above it is a lie that must not drive allocations.
    static let maxEntries = 1 << 20

    /// A decoding failure: the bytes are not a consumer-protocol payload.
    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func encodeSubscription(topics: [String]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int16(0))
        buffer.writeInteger(Int32(topics.count))
        for topic in topics { writeString(topic, to: &buffer) }
        buffer.writeInteger(Int32(-1)) // no user data
        return Array(buffer.readableBytesView)
    }

    /// The topics of a subscription (any version).
    public static func decodeSubscription(_ bytes: [UInt8]) throws -> [String] {
        var buffer = ByteBuffer(bytes: bytes)
        guard let version: Int16 = buffer.readInteger(), version >= 0 else { throw DecodingError(description: "subscription without a version") }
        let count = try readCount(&buffer, "topics")
        return try (0..<count).map { _ in try readString(&buffer) }
    }

    public static func encodeAssignment(_ assignment: [String: [Int32]]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int16(0))
        buffer.writeInteger(Int32(assignment.count))
        for (topic, partitions) in assignment.sorted(by: { $0.key < $1.key }) {
            writeString(topic, to: &buffer)
            buffer.writeInteger(Int32(partitions.count))
            for p in partitions.sorted() { buffer.writeInteger(p) }
        }
        buffer.writeInteger(Int32(-1))
        return Array(buffer.readableBytesView)
    }

    /// The partitions of an assignment (any version); empty bytes are an empty assignment.
    public static func decodeAssignment(_ bytes: [UInt8]) throws -> [String: [Int32]] {
        if bytes.isEmpty { return [:] }
        var buffer = ByteBuffer(bytes: bytes)
        guard let version: Int16 = buffer.readInteger(), version >= 0 else { throw DecodingError(description: "assignment without a version") }
        var out: [String: [Int32]] = [:]
        for _ in 0..<(try readCount(&buffer, "topics")) {
            let topic = try readString(&buffer)
            let count = try readCount(&buffer, "partitions")
            var partitions: [Int32] = []
            for _ in 0..<count {
                guard let p: Int32 = buffer.readInteger() else { throw DecodingError(description: "assignment cut short") }
                partitions.append(p)
            }
            out[topic, default: []] += partitions
        }
        return out
    }

    private static func writeString(_ s: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int16(s.utf8.count))
        buffer.writeString(s)
    }

    private static func readString(_ buffer: inout ByteBuffer) throws -> String {
        guard let length: Int16 = buffer.readInteger(), length >= 0, let s = buffer.readString(length: Int(length)) else {
            throw DecodingError(description: "bad string in a consumer-protocol payload")
        }
        return s
    }

    private static func readCount(_ buffer: inout ByteBuffer, _ what: String) throws -> Int {
        guard let count: Int32 = buffer.readInteger(), count >= 0, Int(count) <= min(maxEntries, buffer.readableBytes) else {
            throw DecodingError(description: "bad \(what) count in a consumer-protocol payload")
        }
        return Int(count)
    }
}

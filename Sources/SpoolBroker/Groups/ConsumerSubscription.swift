/// The topics in a member's `consumer` protocol metadata (Kafka's ConsumerProtocolSubscription:
/// version i16, then a count i32 of i16-length topic names; later versions append fields
/// after them, which are not read). nil when the bytes are not that layout.
enum ConsumerSubscription {
    /// Most topics read from one member's metadata (bounds a hostile count).
    static let maxTopics = 100_000

    static func topics(_ metadata: [UInt8]) -> [String]? {
        var p = 0
        func int(_ width: Int) -> Int? {
            guard metadata.count - p >= width else { return nil }
            var v = 0
            for i in 0..<width { v = v << 8 | Int(metadata[p + i]) }
            p += width
            return v
        }
        guard let version = int(2), version < 0x8000, let count = int(4), count <= maxTopics else { return nil }
        var topics: [String] = []
        for _ in 0..<count {
            guard let n = int(2), n < 0x8000, metadata.count - p >= n,
                  let name = String(validating: metadata[p..<(p + n)], as: UTF8.self) else { return nil }
            p += n
            topics.append(name)
        }
        return topics
    }
}

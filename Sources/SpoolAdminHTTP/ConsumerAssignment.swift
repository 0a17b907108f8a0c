import SpoolRecords

/// Decodes a member's assignment as Kafka's consumer protocol writes it (what every Kafka
/// client and Spool's own consumer put in SyncGroup): version int16, then an array of
/// (topic string, partitions int32 array), then user data. Bounds-checked: a malformed
/// or foreign assignment yields nil, never a crash.
enum ConsumerAssignment {
    /// Most topic or partition entries believed from one assignment (a count larger than
    /// the bytes left could hold is a lie and must not drive allocations).
    static func decode(_ bytes: [UInt8]) -> [TopicPartitionView]? {
        var reader = Reader(bytes: bytes)
        guard let version = reader.int16(), version >= 0, let topics = reader.int32(), topics >= 0,
              Int(topics) <= bytes.count / 6 else { return nil }
        var result: [TopicPartitionView] = []
        for _ in 0..<topics {
            guard let nameLength = reader.int16(), nameLength >= 0, let name = reader.string(Int(nameLength)),
                  let count = reader.int32(), count >= 0, Int(count) <= reader.remaining / 4 else { return nil }
            for _ in 0..<count {
                guard let partition = reader.int32() else { return nil }
                result.append(TopicPartitionView(topic: name, partition: partition))
            }
        }
        return result
    }

    struct Reader {
        let bytes: [UInt8]
        var position = 0
        var remaining: Int { bytes.count - position }

        mutating func int16() -> Int16? {
            guard remaining >= 2 else { return nil }
            defer { position += 2 }
            return Int16(bitPattern: UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1]))
        }

        mutating func int32() -> Int32? {
            guard remaining >= 4 else { return nil }
            defer { position += 4 }
            var v: UInt32 = 0
            for i in 0..<4 { v = v << 8 | UInt32(bytes[position + i]) }
            return Int32(bitPattern: v)
        }

        mutating func string(_ length: Int) -> String? {
            guard remaining >= length else { return nil }
            defer { position += length }
            return String(decoding: bytes[position..<position + length], as: UTF8.self)
        }
    }
}

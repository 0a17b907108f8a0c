import SpoolRecords

/// One record of the committed-offsets log (`consumer-offsets.log`), Kafka's
/// `__consumer_offsets` in miniature: a whole commit call, or a removal.
///
/// Framing, big-endian: body length u32, CRC-32C of the body u32, body. Body: a type
/// byte, then for a commit the group (u16 length + UTF-8), an entry count u32 and per
/// entry topic (u16 + UTF-8), partition i32, offset i64, commit timestamp i64 and
/// metadata (u32 + UTF-8); for a group removal the group; for a topic removal the topic;
/// for an offsets removal (OffsetDelete) the group, a count u32 and per entry topic and partition.
/// A commit of many partitions is one record, so it is applied whole or not at all.
enum OffsetLogRecord: Equatable {
    case commit(group: String, offsets: [TopicPartition: CommittedOffset])
    case removeGroup(String)
    case removeTopic(String)
    case removeOffsets(group: String, partitions: [TopicPartition])

    static let frameHeaderBytes = 8
    /// A body length past this is damage (a torn or flipped length field), not a record.
    static let maxBodyBytes = 64 << 20

    private enum Kind: UInt8 {
        case commit = 1
        case removeGroup = 2
        case removeTopic = 3
        case removeOffsets = 4
    }

    /// The framed record, ready to append.
    func framed() -> [UInt8] {
        var body: [UInt8] = []
        switch self {
        case .commit(let group, let offsets):
            body.append(Kind.commit.rawValue)
            Self.put(string16: group, &body)
            Self.put(UInt32(offsets.count), &body)
            for (tp, c) in offsets.sorted(by: { $0.key < $1.key }) {
                Self.put(string16: tp.topic, &body)
                Self.put(UInt32(bitPattern: tp.partition), &body)
                Self.put(UInt64(bitPattern: c.offset), &body)
                Self.put(UInt64(bitPattern: c.commitTimestamp), &body)
                let meta = Array(c.metadata.utf8)
                Self.put(UInt32(meta.count), &body)
                body += meta
            }
        case .removeGroup(let group):
            body.append(Kind.removeGroup.rawValue)
            Self.put(string16: group, &body)
        case .removeTopic(let topic):
            body.append(Kind.removeTopic.rawValue)
            Self.put(string16: topic, &body)
        case .removeOffsets(let group, let partitions):
            body.append(Kind.removeOffsets.rawValue)
            Self.put(string16: group, &body)
            Self.put(UInt32(partitions.count), &body)
            for tp in partitions.sorted() {
                Self.put(string16: tp.topic, &body)
                Self.put(UInt32(bitPattern: tp.partition), &body)
            }
        }
        precondition(body.count <= Self.maxBodyBytes, "offset commit record of \(body.count) bytes")
        var framed: [UInt8] = []
        framed.reserveCapacity(Self.frameHeaderBytes + body.count)
        Self.put(UInt32(body.count), &framed)
        Self.put(CRC32C.checksum(body), &framed)
        framed += body
        return framed
    }

    /// Decodes the record framed at `position` of `bytes`: the record and the position
    /// after it, or nil when there is no whole, intact record there (the end of the log,
    /// or a torn or damaged tail).
    static func decode(_ bytes: [UInt8], at position: Int) -> (record: OffsetLogRecord, next: Int)? {
        guard bytes.count - position >= frameHeaderBytes else { return nil }
        var p = position
        let length = Int(get32(bytes, &p))
        let crc = get32(bytes, &p)
        guard length >= 1, length <= maxBodyBytes, bytes.count - p >= length else { return nil }
        let body = Array(bytes[p..<(p + length)])
        guard CRC32C.checksum(body) == crc else { return nil }
        var reader = Reader(bytes: body)
        guard let record = reader.record(), reader.position == body.count else { return nil }
        return (record, p + length)
    }

    /// Applies the record to an offsets table.
    func apply(to table: inout [String: [TopicPartition: CommittedOffset]]) {
        switch self {
        case .commit(let group, let offsets):
            table[group, default: [:]].merge(offsets) { _, new in new }
        case .removeGroup(let group):
            table.removeValue(forKey: group)
        case .removeTopic(let topic):
            for group in Array(table.keys) {
                table[group] = table[group]!.filter { $0.key.topic != topic }
                if table[group]!.isEmpty { table.removeValue(forKey: group) }
            }
        case .removeOffsets(let group, let partitions):
            guard var offsets = table[group] else { return }
            for tp in partitions { offsets.removeValue(forKey: tp) }
            table[group] = offsets.isEmpty ? nil : offsets
        }
    }

    private static func put(_ v: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func put(_ v: UInt64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func put(string16 s: String, _ out: inout [UInt8]) {
        let utf8 = Array(s.utf8)
        precondition(utf8.count <= Int(UInt16.max))
        withUnsafeBytes(of: UInt16(utf8.count).bigEndian) { out.append(contentsOf: $0) }
        out += utf8
    }

    private static func get32(_ bytes: [UInt8], _ p: inout Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[p + i]) }
        p += 4
        return v
    }

    /// Reads a body; every read is bounds-checked (the CRC can pass on a record written
    /// by a buggy version, and a bad count must not drive allocations).
    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func int(_ width: Int) -> UInt64? {
            guard bytes.count - position >= width else { return nil }
            var v: UInt64 = 0
            for i in 0..<width { v = v << 8 | UInt64(bytes[position + i]) }
            position += width
            return v
        }

        mutating func string(lengthBytes: Int) -> String? {
            guard let n = int(lengthBytes).map(Int.init), bytes.count - position >= n else { return nil }
            defer { position += n }
            return String(validating: bytes[position..<(position + n)], as: UTF8.self)
        }

        mutating func record() -> OffsetLogRecord? {
            guard let kind = int(1).flatMap({ Kind(rawValue: UInt8($0)) }) else { return nil }
            switch kind {
            case .commit:
                guard let group = string(lengthBytes: 2), let count = int(4) else { return nil }
                // Every entry takes at least 26 bytes: a larger count is a lie.
                guard Int(count) <= (bytes.count - position) / 26 else { return nil }
                var offsets: [TopicPartition: CommittedOffset] = [:]
                for _ in 0..<count {
                    guard let topic = string(lengthBytes: 2), let partition = int(4), let offset = int(8),
                          let timestamp = int(8), let metadata = string(lengthBytes: 4) else { return nil }
                    offsets[TopicPartition(topic, Int32(bitPattern: UInt32(partition)))] =
                        CommittedOffset(offset: Int64(bitPattern: offset), metadata: metadata, commitTimestamp: Int64(bitPattern: timestamp))
                }
                return .commit(group: group, offsets: offsets)
            case .removeGroup:
                return string(lengthBytes: 2).map { .removeGroup($0) }
            case .removeTopic:
                return string(lengthBytes: 2).map { .removeTopic($0) }
            case .removeOffsets:
                guard let group = string(lengthBytes: 2), let count = int(4) else { return nil }
                // Every entry takes at least 6 bytes: a larger count is a lie.
                guard Int(count) <= (bytes.count - position) / 6 else { return nil }
                var partitions: [TopicPartition] = []
                for _ in 0..<count {
                    guard let topic = string(lengthBytes: 2), let partition = int(4) else { return nil }
                    partitions.append(TopicPartition(topic, Int32(bitPattern: UInt32(partition))))
                }
                return .removeOffsets(group: group, partitions: partitions)
            }
        }
    }
}

import NIOCore

/// The sparse offset index of one segment: relative offset → file position of
/// the batch that starts there, one entry per `index.interval.bytes` of log.
///
/// On disk (`.index`): 8-byte entries, big-endian (relative offset u32, position
/// u32), as in Kafka. Held in memory as a packed array; lookups are binary searches.
struct OffsetIndex {
    static let entryBytes = 8

    let baseOffset: Int64
    /// Packed entries: relative offset in the high 32 bits, position in the low 32.
    private(set) var entries: [UInt64] = []

    init(baseOffset: Int64) {
        self.baseOffset = baseOffset
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    func offset(at i: Int) -> Int64 { baseOffset + Int64(entries[i] >> 32) }
    func position(at i: Int) -> Int { Int(entries[i] & 0xFFFF_FFFF) }

    var last: (offset: Int64, position: Int)? {
        entries.isEmpty ? nil : (offset(at: entries.count - 1), position(at: entries.count - 1))
    }

    mutating func append(offset: Int64, position: Int) {
        let relative = offset - baseOffset
        precondition(relative >= 0 && relative <= Int64(UInt32.max), "offset \(offset) does not fit segment \(baseOffset)")
        precondition(position >= 0 && position <= Int(UInt32.max), "segment position \(position) over 4 GiB")
        if let last {
            precondition(offset > last.offset && position > last.position, "offset index entries must increase")
        }
        entries.append(UInt64(relative) << 32 | UInt64(position))
    }

    /// The entry with the largest offset ≤ `offset`, or the segment start.
    func floor(offset: Int64) -> (offset: Int64, position: Int) {
        var lo = 0
        var hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self.offset(at: mid) <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? (baseOffset, 0) : (self.offset(at: lo - 1), position(at: lo - 1))
    }

    /// The entry with the largest position ≤ `position`, or the segment start.
    func floor(position: Int) -> (offset: Int64, position: Int) {
        var lo = 0
        var hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self.position(at: mid) <= position { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? (baseOffset, 0) : (offset(at: lo - 1), self.position(at: lo - 1))
    }

    /// Drops the entries at or past `position` (after a truncation of the log).
    mutating func truncate(toPosition position: Int) {
        while let last, last.position >= position { entries.removeLast() }
    }

    func encoded() -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(entries.count * Self.entryBytes)
        for e in entries {
            withUnsafeBytes(of: e.bigEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// Decodes index file bytes; nil when they are not a valid index for a log of `logBytes`.
    static func decode(_ bytes: [UInt8], baseOffset: Int64, logBytes: Int) -> OffsetIndex? {
        guard bytes.count % entryBytes == 0 else { return nil }
        var index = OffsetIndex(baseOffset: baseOffset)
        index.entries.reserveCapacity(bytes.count / entryBytes)
        var previous: UInt64?
        for i in stride(from: 0, to: bytes.count, by: entryBytes) {
            var e: UInt64 = 0
            for j in 0..<8 { e = e << 8 | UInt64(bytes[i + j]) }
            if let p = previous, (e >> 32) <= (p >> 32) || (e & 0xFFFF_FFFF) <= (p & 0xFFFF_FFFF) { return nil }
            if Int(e & 0xFFFF_FFFF) >= logBytes { return nil }
            index.entries.append(e)
            previous = e
        }
        return index
    }
}

/// The sparse time index of one segment: the largest timestamp seen so far →
/// the base offset of the batch that carried it. Entries only grow in timestamp.
///
/// On disk (`.timeindex`): 12-byte entries, big-endian (timestamp i64, relative offset u32).
struct TimeIndex {
    static let entryBytes = 12

    let baseOffset: Int64
    private(set) var timestamps: [Int64] = []
    private(set) var relativeOffsets: [UInt32] = []

    init(baseOffset: Int64) {
        self.baseOffset = baseOffset
    }

    var count: Int { timestamps.count }
    var maxTimestamp: Int64? { timestamps.last }
    var lastOffset: Int64? { relativeOffsets.last.map { baseOffset + Int64($0) } }

    mutating func append(timestamp: Int64, offset: Int64) {
        let relative = offset - baseOffset
        precondition(relative >= 0 && relative <= Int64(UInt32.max))
        if let last = timestamps.last {
            guard timestamp > last else { return }
            precondition(UInt32(relative) >= relativeOffsets.last!, "time index offsets must not decrease")
        }
        timestamps.append(timestamp)
        relativeOffsets.append(UInt32(relative))
    }

    /// The offset of the batch holding the largest timestamp < `timestamp`, or the segment start:
    /// every batch before it has only smaller timestamps.
    func searchStart(forTimestamp timestamp: Int64) -> Int64 {
        var lo = 0
        var hi = timestamps.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if timestamps[mid] < timestamp { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? baseOffset : baseOffset + Int64(relativeOffsets[lo - 1])
    }

    /// Drops entries for offsets ≥ `offset`.
    mutating func truncate(toOffset offset: Int64) {
        while let last = relativeOffsets.last, baseOffset + Int64(last) >= offset {
            relativeOffsets.removeLast()
            timestamps.removeLast()
        }
    }

    func encoded() -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(timestamps.count * Self.entryBytes)
        for i in 0..<timestamps.count {
            withUnsafeBytes(of: timestamps[i].bigEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: relativeOffsets[i].bigEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8], baseOffset: Int64, nextOffset: Int64) -> TimeIndex? {
        guard bytes.count % entryBytes == 0 else { return nil }
        var index = TimeIndex(baseOffset: baseOffset)
        for i in stride(from: 0, to: bytes.count, by: entryBytes) {
            var ts: UInt64 = 0
            for j in 0..<8 { ts = ts << 8 | UInt64(bytes[i + j]) }
            var rel: UInt32 = 0
            for j in 8..<12 { rel = rel << 8 | UInt32(bytes[i + j]) }
            let timestamp = Int64(bitPattern: ts)
            if let last = index.timestamps.last, timestamp <= last || rel < index.relativeOffsets.last! { return nil }
            if baseOffset + Int64(rel) >= nextOffset { return nil }
            index.timestamps.append(timestamp)
            index.relativeOffsets.append(rel)
        }
        return index
    }
}

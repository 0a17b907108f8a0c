import NIOCore

/// One aborted transaction of a partition, as Kafka's `.txnindex` keeps it.
public struct AbortedTransaction: Hashable, Sendable {
    public var producerId: Int64
    /// Offset of the transaction's first batch in the partition.
    public var firstOffset: Int64
    /// Offset of its ABORT marker.
    public var lastOffset: Int64
    /// The partition's last stable offset once the marker was written: every transaction
    /// that began below it had ended by then (a fetch's search stops at such an entry).
    public var lastStableOffset: Int64

    public init(producerId: Int64, firstOffset: Int64, lastOffset: Int64, lastStableOffset: Int64) {
        self.producerId = producerId
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.lastStableOffset = lastStableOffset
    }
}

/// A segment's aborted-transactions index, `<base>.txnindex`: Kafka's layout, one
/// 34-byte entry per ABORT marker in the segment — version int16 (0), producer id int64,
/// first offset int64, last offset int64, last stable offset int64 — in marker order.
///
/// Appended (one `pwrite` at the end) when an ABORT marker is appended to the segment,
/// fsynced with the segment's other indexes. Kept in memory too (entries are few: one
/// per aborted transaction). A torn tail (a partial entry) is dropped when loaded.
/// Not thread-safe: the owning segment's partition lock guards it.
struct TransactionIndex {
    static let entryBytes = 34
    static let version: Int16 = 0
    static let fileExtension = "txnindex"

    private(set) var entries: [AbortedTransaction] = []

    init(entries: [AbortedTransaction] = []) {
        self.entries = entries
    }

    /// The entries of a file's bytes; a partial last entry (a torn write) is dropped, and
    /// decoding stops at an entry of an unknown version (nil: the file is not an index).
    static func decode(_ bytes: [UInt8]) -> TransactionIndex? {
        var buffer = ByteBuffer(bytes: bytes)
        var entries: [AbortedTransaction] = []
        while buffer.readableBytes >= entryBytes {
            guard let version: Int16 = buffer.readInteger(), version == Self.version,
                  let producerId: Int64 = buffer.readInteger(), let first: Int64 = buffer.readInteger(),
                  let last: Int64 = buffer.readInteger(), let lso: Int64 = buffer.readInteger(),
                  first <= last else { return nil }
            entries.append(AbortedTransaction(producerId: producerId, firstOffset: first, lastOffset: last, lastStableOffset: lso))
        }
        return TransactionIndex(entries: entries)
    }

    static func encode(_ entry: AbortedTransaction, into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(entry.producerId)
        buffer.writeInteger(entry.firstOffset)
        buffer.writeInteger(entry.lastOffset)
        buffer.writeInteger(entry.lastStableOffset)
    }

    /// The whole file's bytes.
    func encoded() -> [UInt8] {
        var buffer = ByteBuffer()
        for e in entries { Self.encode(e, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    /// Bytes of the file holding every entry.
    var fileBytes: Int64 { Int64(entries.count * Self.entryBytes) }

    mutating func append(_ entry: AbortedTransaction) {
        entries.append(entry)
    }

    /// Drops the entries whose marker is at or after `offset` (log truncation); true if any went.
    mutating func truncate(from offset: Int64) -> Bool {
        let before = entries.count
        entries.removeAll { $0.lastOffset >= offset }
        return entries.count != before
    }
}

import NIOCore
import SpoolRecords
import SpoolStorage
import Synchronization

/// Per partition: the open transactions' first offsets (which give the last stable
/// offset) and the aborted transactions (producer id, first offset, marker offset),
/// which read_committed fetches answer with.
///
/// Kept in memory and rebuilt, on first use after a start, from the log itself: every
/// batch header is walked and each control batch's marker read (so the index is the
/// log's, whatever kind of stop came before). Appends update it on the partition's
/// serial queue: ``prepare(_:)`` before the write, ``recordAppended(_:at:log:)`` after.
public final class PartitionTransactions: Sendable {
    /// One aborted transaction of a partition.
    public struct Aborted: Sendable, Equatable {
        public var producerId: Int64
        public var firstOffset: Int64
        /// Offset of its ABORT marker.
        public var lastOffset: Int64
    }

    struct Entry {
        let log: PartitionLog
        var open: [Int64: Int64] = [:]
        var aborted: [Aborted] = []
    }

    private let entries = Mutex<[TopicPartition: Entry]>([:])

    public init() {}

    /// Loads the partition's index if it is not yet loaded (or belongs to an older log of the name).
    func prepare(_ log: PartitionLog) throws {
        let tp = TopicPartition(log.topic, log.partition)
        try entries.withLock { e in
            if let existing = e[tp], existing.log === log { return }
            e[tp] = try Self.rebuild(log)
        }
    }

    /// Records batches just appended (headers with their final offsets).
    func recordAppended(_ headers: [RecordBatchHeader], commitTypes: [Int64: Bool] = [:], log: PartitionLog) {
        let tp = TopicPartition(log.topic, log.partition)
        entries.withLock { e in
            guard var entry = e[tp], entry.log === log else { return }
            for h in headers { Self.apply(h, commit: commitTypes[h.baseOffset], to: &entry) }
            e[tp] = entry
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, else the high watermark.
    func lastStableOffset(_ log: PartitionLog, highWatermark: Int64) throws -> Int64 {
        try prepare(log)
        let tp = TopicPartition(log.topic, log.partition)
        let first = entries.withLock { $0[tp]?.open.values.min() }
        return min(first ?? highWatermark, highWatermark)
    }

    /// The aborted transactions overlapping `from..<upTo`.
    func aborted(_ log: PartitionLog, from: Int64, upTo: Int64) throws -> [Aborted] {
        try prepare(log)
        let tp = TopicPartition(log.topic, log.partition)
        return entries.withLock { e in
            (e[tp]?.aborted ?? []).filter { $0.lastOffset >= from && $0.firstOffset < upTo }
        }
    }

    /// Producers with a transaction open in the partition (for tests).
    func openProducers(_ log: PartitionLog) throws -> [Int64: Int64] {
        try prepare(log)
        return entries.withLock { $0[TopicPartition(log.topic, log.partition)]?.open ?? [:] }
    }

    private static func apply(_ h: RecordBatchHeader, commit: Bool?, to entry: inout Entry) {
        guard h.producerId >= 0, h.isTransactional else { return }
        if h.isControl {
            guard let first = entry.open.removeValue(forKey: h.producerId) else { return }
            if commit == false {
                entry.aborted.append(Aborted(producerId: h.producerId, firstOffset: first, lastOffset: h.baseOffset))
            }
        } else if entry.open[h.producerId] == nil {
            entry.open[h.producerId] = h.baseOffset
        }
    }

    private static func rebuild(_ log: PartitionLog) throws -> Entry {
        var entry = Entry(log: log)
        var headers: [RecordBatchHeader] = []
        try log.forEachBatchHeader(tailBytesMax: Int64.max) { h in
            if h.isTransactional { headers.append(h) }
        }
        for h in headers {
            let commit = h.isControl ? try markerIsCommit(log, at: h.baseOffset) : nil
            apply(h, commit: commit, to: &entry)
        }
        return entry
    }

    /// Reads the control batch at `offset` and tells COMMIT (true) from ABORT (false).
    static func markerIsCommit(_ log: PartitionLog, at offset: Int64) throws -> Bool {
        let bytes = try log.readBytes(from: offset, maxBytes: 1)
        return try markerIsCommit(bytes)
    }

    /// COMMIT (true) or ABORT (false), from the bytes of a control batch.
    static func markerIsCommit(_ batch: ByteBuffer) throws -> Bool {
        var b = batch
        b.moveReaderIndex(forwardBy: RecordBatchHeader.size)
        _ = try Varint.read(from: &b)              // record length
        b.moveReaderIndex(forwardBy: 1)           // attributes
        _ = try Varint.read(from: &b)              // timestamp delta
        _ = try Varint.read(from: &b)              // offset delta
        let keyLength = try Varint.read(from: &b)
        guard keyLength >= 4, let _: Int16 = b.readInteger(), let type: Int16 = b.readInteger() else {
            throw BrokerError(.corrupt, "control batch without a marker key")
        }
        return type == 1
    }
}

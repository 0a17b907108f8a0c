import NIOCore
import SpoolRecords
import SpoolStorage
import Synchronization

/// Per partition: the open transactions' first offsets (which give the last stable
/// offset). The aborted transactions (producer id, first offset, marker offset), which
/// read_committed fetches answer with, are in the log's per-segment `.txnindex` files
/// (`PartitionLog.abortedTransactions`), appended when an ABORT marker is written.
///
/// The open transactions are kept in memory and rebuilt, on first use after a start, from
/// the log itself: every batch header is walked (so they are the log's, whatever kind of
/// stop came before). Appends update them on the partition's serial queue:
/// ``prepare(_:)`` before the write, ``recordAppended(_:commitTypes:log:)`` after.
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

    /// Records batches just appended (headers with their final offsets); returns the
    /// transactions their ABORT markers (`commitTypes` false) ended, with the last stable
    /// offset after each, for the log's `.txnindex`.
    @discardableResult
    func recordAppended(_ headers: [RecordBatchHeader], commitTypes: [Int64: Bool] = [:], log: PartitionLog) -> [AbortedTransaction] {
        let tp = TopicPartition(log.topic, log.partition)
        return entries.withLock { e in
            guard var entry = e[tp], entry.log === log else { return [] }
            var aborted: [AbortedTransaction] = []
            for h in headers {
                if let a = Self.apply(h, commit: commitTypes[h.baseOffset], to: &entry) { aborted.append(a) }
            }
            e[tp] = entry
            return aborted
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, else the high watermark.
    func lastStableOffset(_ log: PartitionLog, highWatermark: Int64) throws -> Int64 {
        try prepare(log)
        let tp = TopicPartition(log.topic, log.partition)
        let first = entries.withLock { $0[tp]?.open.values.min() }
        return min(first ?? highWatermark, highWatermark)
    }

    /// The aborted transactions overlapping `from..<upTo`, from the log's `.txnindex` files.
    func aborted(_ log: PartitionLog, from: Int64, upTo: Int64) throws -> [Aborted] {
        log.abortedTransactions(from: from, upTo: upTo).map {
            Aborted(producerId: $0.producerId, firstOffset: $0.firstOffset, lastOffset: $0.lastOffset)
        }
    }

    /// Producers with a transaction open in the partition (for tests).
    func openProducers(_ log: PartitionLog) throws -> [Int64: Int64] {
        try prepare(log)
        return entries.withLock { $0[TopicPartition(log.topic, log.partition)]?.open ?? [:] }
    }

    private static func apply(_ h: RecordBatchHeader, commit: Bool?, to entry: inout Entry) -> AbortedTransaction? {
        guard h.producerId >= 0, h.isTransactional else { return nil }
        if h.isControl {
            guard let first = entry.open.removeValue(forKey: h.producerId), commit == false else { return nil }
            let lso = min(entry.open.values.min() ?? h.nextOffset, h.nextOffset)
            return AbortedTransaction(producerId: h.producerId, firstOffset: first, lastOffset: h.baseOffset, lastStableOffset: lso)
        } else if entry.open[h.producerId] == nil {
            entry.open[h.producerId] = h.baseOffset
        }
        return nil
    }

    /// The open transactions, from the log's batch headers (a marker ends its producer's
    /// transaction whatever its type: no record is read).
    private static func rebuild(_ log: PartitionLog) throws -> Entry {
        var entry = Entry(log: log)
        try log.forEachBatchHeader(tailBytesMax: Int64.max) { h in
            if h.isTransactional { _ = apply(h, commit: nil, to: &entry) }
        }
        return entry
    }
}

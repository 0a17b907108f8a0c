import NIOCore
import SpoolRecords

// The aborted-transactions index of a partition: one `.txnindex` per segment (see
// ``TransactionIndex``), appended when an ABORT marker is written, read by read_committed
// fetches, rebuilt from the log's batches when a segment's file was lost or recovery
// re-checked markers.
extension PartitionLog {
    /// Records the ABORT marker at `entry.lastOffset` (just appended) in its segment's
    /// `.txnindex`; durable with the segment's next fsync. A failed write is retried by
    /// the next index write (see `LogSegment.appendAbortedTransaction`).
    public func appendAbortedTransaction(_ entry: AbortedTransaction) throws {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let segment = s.segments[Self.segmentIndex(s.segments, for: entry.lastOffset)]
            if segment.appendAbortedTransaction(entry) { s.directoryNeedsSync = true }
        }
    }

    /// The aborted transactions overlapping `from..<upTo` (their first offset below `upTo`,
    /// their marker at or after `from`), from the indexes of the segments from the one
    /// holding `from` on. The search ends at the first segment with an entry whose last
    /// stable offset reaches `upTo`: every transaction begun below `upTo` had ended by then.
    public func abortedTransactions(from: Int64, upTo: Int64) -> [AbortedTransaction] {
        state.withLock { s in
            var found: [AbortedTransaction] = []
            var i = Self.segmentIndex(s.segments, for: from)
            while i < s.segments.count {
                var complete = false
                for e in s.segments[i].txnIndex.entries {
                    if e.lastOffset >= from && e.firstOffset < upTo { found.append(e) }
                    if e.lastStableOffset >= upTo { complete = true }
                }
                if complete { break }
                i += 1
            }
            return found
        }
    }

    /// Every segment's index entries, oldest segment first (for tests and tools).
    public func abortedTransactionIndex() -> [(segmentBase: Int64, entries: [AbortedTransaction])] {
        state.withLock { s in s.segments.map { ($0.baseOffset, $0.txnIndex.entries) } }
    }

    /// Rebuilds the entries of the segments whose `.txnindex` could not be trusted, from
    /// the batches: every batch header from the log's first segment (a transaction may
    /// begin segments before its marker), each control batch's marker read. Rare: only
    /// after a lost file, or when recovery re-checked a segment holding markers.
    static func rebuildTransactionIndexes(_ segments: [LogSegment]) throws {
        guard segments.contains(where: { $0.txnIndexNeedsRebuild }) else { return }
        var open: [Int64: Int64] = [:]
        for segment in segments {
            var entries: [AbortedTransaction] = []
            try segment.forEachBatchHeader { header, position in
                guard header.producerId >= 0, header.isTransactional else { return }
                guard header.isControl else {
                    if open[header.producerId] == nil { open[header.producerId] = header.baseOffset }
                    return
                }
                guard let first = open.removeValue(forKey: header.producerId), segment.txnIndexNeedsRebuild else { return }
                let batch = try segment.readBytes(position: position, length: header.totalBytes)
                guard try ControlRecord.isAbort(batch) else { return }
                let lso = min(open.values.min() ?? header.nextOffset, header.nextOffset)
                entries.append(AbortedTransaction(producerId: header.producerId, firstOffset: first, lastOffset: header.baseOffset,
                                                  lastStableOffset: lso))
            }
            if segment.txnIndexNeedsRebuild { segment.replaceTxnIndex(entries) }
        }
    }
}

/// A transaction marker's type, from its control batch: the first record's key is
/// {version int16, type int16: 0 ABORT, 1 COMMIT}.
enum ControlRecord {
    static func isAbort(_ batch: ByteBuffer) throws -> Bool {
        var b = batch
        b.moveReaderIndex(forwardBy: RecordBatchHeader.size)
        _ = try Varint.read(from: &b)              // record length
        b.moveReaderIndex(forwardBy: 1)           // attributes
        _ = try Varint.read(from: &b)              // timestamp delta
        _ = try Varint.read(from: &b)              // offset delta
        let keyLength = try Varint.read(from: &b)
        guard keyLength >= 4, let _: Int16 = b.readInteger(), let type: Int16 = b.readInteger() else {
            throw StorageError(.corrupt, "control batch at offset \(RecordBatchHeader(buffer: batch, at: batch.readerIndex)?.baseOffset ?? -1) without a marker key")
        }
        return type == 0
    }
}

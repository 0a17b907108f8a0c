import NIOCore
import SpoolRecords

/// Record-level work of compaction: the key and offset of every record of a batch, the
/// refusal of keyless records, and the rebuilding of a batch with only some of its records.
enum CompactedRecords {
    /// What the cleaner needs of one record: where it is in the decompressed records, its
    /// offset, key and whether it is a tombstone.
    struct Entry {
        var range: Range<Int>
        var offset: Int64
        var timestamp: Int64
        var key: [UInt8]?
        var isTombstone: Bool
    }

    /// Limits for decoding stored batches (they were validated when produced).
    static let limits = RecordDecodingLimits(maxDecompressedBytes: 256 << 20)

    /// Walks the records of `batch` (decompressed once) without building `Record`s.
    static func entries(of batch: RecordBatch) throws -> (records: ByteBuffer, entries: [Entry]) {
        let records = try batch.decompressedRecords(limits: limits)
        var reader = records
        var entries: [Entry] = []
        entries.reserveCapacity(Int(batch.header.recordCount))
        while reader.readableBytes > 0 && entries.count < Int(batch.header.recordCount) {
            let start = reader.readerIndex
            let length = try Varint.read32(from: &reader)
            guard length > 0, Int(length) <= reader.readableBytes else {
                throw RecordsError(.badRecord, "record length \(length) does not fit in the \(reader.readableBytes) bytes left")
            }
            var body = reader.readSlice(length: Int(length))!
            _ = body.readInteger(as: Int8.self)
            let timestampDelta = try Varint.read(from: &body)
            let offsetDelta = try Varint.read32(from: &body)
            let keyLength = try Varint.read32(from: &body)
            var key: [UInt8]?
            if keyLength >= 0 {
                guard let bytes = body.readBytes(length: Int(keyLength)) else { throw RecordsError(.badRecord, "key past the record's end") }
                key = bytes
            }
            let valueLength = try Varint.read32(from: &body)
            entries.append(Entry(range: (start - records.readerIndex)..<(reader.readerIndex - records.readerIndex),
                                 offset: batch.header.baseOffset + Int64(offsetDelta),
                                 timestamp: batch.header.baseTimestamp + timestampDelta, key: key, isTombstone: valueLength < 0))
        }
        return (records, entries)
    }

    /// Throws `.invalidRecord` (Kafka's INVALID_RECORD) if a record of `batches` has no
    /// key: a compacted topic keeps the last record per key, and a keyless one has none.
    static func requireKeys(_ batches: ByteBuffer) throws {
        var reader = RecordBatchReader(batches)
        while let batch = try reader.next() {
            if batch.header.isControl { continue }
            for entry in try entries(of: batch).entries where entry.key == nil {
                throw StorageError(.invalidRecord, "Compacted topic cannot accept message without key in topic partition (record at offset delta \(entry.offset - batch.header.baseOffset))")
            }
        }
    }

    /// The batch with only the records `keep` says yes to, or nil when none is kept. The
    /// base offset, last offset delta, base timestamp, producer fields and codec stay the
    /// batch's own (as Kafka keeps them, so offsets and sequence numbers survive); the kept
    /// records are compressed again with the batch's codec. An unchanged batch is returned as
    /// it was, byte for byte.
    static func filter(_ batch: RecordBatch, keep: (Entry) -> Bool) throws -> ByteBuffer? {
        let (records, entries) = try entries(of: batch)
        let kept = entries.filter(keep)
        if kept.count == entries.count { return batch.bytes }
        if kept.isEmpty { return nil }
        var body = ByteBuffer()
        body.reserveCapacity(kept.reduce(0) { $0 + $1.range.count })
        for entry in kept {
            body.writeImmutableBuffer(records.getSlice(at: records.readerIndex + entry.range.lowerBound, length: entry.range.count)!)
        }
        var out = ByteBuffer()
        out.reserveCapacity(RecordBatchHeader.size + Compression.maxCompressedBytes(body.readableBytes, codec: batch.codec))
        out.writeRepeatingByte(0, count: RecordBatchHeader.size)
        try body.withUnsafeReadableBytes { try Compression.compress($0, codec: batch.codec, into: &out) }
        var header = batch.header
        header.batchLength = Int32(out.readableBytes - RecordBatchHeader.logOverhead)
        header.recordCount = Int32(kept.count)
        header.crc = 0
        if !batch.header.isLogAppendTime { header.maxTimestamp = kept.map(\.timestamp).max() ?? header.maxTimestamp }
        header.write(to: &out, at: 0)
        RecordBatch.writeCRC(in: &out, at: 0)
        return out
    }
}

import NIOCore

/// What the broker learns from validating a producer's batches for one partition,
/// without decompressing them.
public struct ProducedBatches: Sendable {
    /// Start index (in the validated buffer) and header of each batch, in order.
    public var batches: [(index: Int, header: RecordBatchHeader)]
    /// Total records over all batches.
    public var recordCount: Int64
    /// Largest `maxTimestamp` over all batches.
    public var maxTimestamp: Int64

    /// Validates every batch in `buffer` for appending: whole batches only,
    /// magic 2, supported codec, CRC, at least one record, and offset deltas that
    /// run 0..<recordCount (what every v2 producer writes).
    public static func validate(_ buffer: ByteBuffer, maxBatchBytes: Int = Int(Int32.max)) throws -> ProducedBatches {
        var result = ProducedBatches(batches: [], recordCount: 0, maxTimestamp: -1)
        var index = buffer.readerIndex
        guard buffer.readableBytes > 0 else {
            throw RecordsError(.truncated, "no record batch in the payload", position: 0)
        }
        while index < buffer.writerIndex {
            let position = index - buffer.readerIndex
            guard let header = RecordBatchHeader(buffer: buffer, at: index) else {
                throw RecordsError(.truncated, "\(buffer.writerIndex - index) bytes left, less than a batch header", position: position)
            }
            try header.validateShape(available: buffer.writerIndex - index, position: position, maxBatchBytes: maxBatchBytes)
            guard header.recordCount > 0, header.lastOffsetDelta == header.recordCount - 1 else {
                throw RecordsError(.badRecord, "batch has \(header.recordCount) records but last offset delta \(header.lastOffsetDelta)", position: position)
            }
            let actual = RecordBatch.computeCRC(of: buffer, at: index, totalBytes: header.totalBytes)
            guard actual == header.crc else {
                throw RecordsError(.badCRC, "CRC-32C mismatch: stored \(hex(header.crc)), computed \(hex(actual))", position: position)
            }
            result.batches.append((index, header))
            result.recordCount += Int64(header.recordCount)
            result.maxTimestamp = max(result.maxTimestamp, header.maxTimestamp)
            index += header.totalBytes
        }
        return result
    }

    /// Rewrites the base offsets so the batches take offsets `firstOffset ..< firstOffset + recordCount`,
    /// in the buffer and in `batches`. Returns the offset after the last record.
    @discardableResult
    public mutating func assignOffsets(startingAt firstOffset: Int64, in buffer: inout ByteBuffer) -> Int64 {
        var next = firstOffset
        for i in batches.indices {
            RecordBatch.setBaseOffset(next, in: &buffer, at: batches[i].index)
            batches[i].header.baseOffset = next
            next += Int64(batches[i].header.recordCount)
        }
        return next
    }
}

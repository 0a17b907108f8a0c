import NIOCore

/// Checks the records inside producer batches before the broker stores them, as Kafka's
/// broker does (`LogValidator`): a batch whose CRC is right but whose records cannot be
/// read (corrupt lz4 or gzip data, bad varints, a record count that lies, a decompression
/// bomb, timestamps too far from the broker's clock) is refused at the door, never stored
/// to break every consumer of its range later.
///
/// Compressed records are inflated into a scratch buffer the validator keeps and reuses
/// (one validator per I/O thread); the records are walked in place, field by field, with
/// no allocation per record.
///
/// ```swift
/// let produced = try ProducedBatches.validate(buffer)                // header + CRC
/// try validator.validate(buffer, produced, limits: limits, nowMillis: now)  // every record
/// ```
public struct RecordBatchValidator {
    /// What a batch's records must respect.
    public struct Limits: Sendable, Hashable {
        /// Largest records section, once decompressed (the decompression-bomb guard).
        public var maxDecompressedBytes: Int
        /// Most headers on one record.
        public var maxHeadersPerRecord: Int
        /// Largest distance between a record's create time and the broker's clock
        /// (`message.timestamp.difference.max.ms`); `Int64.max` checks nothing.
        public var timestampDifferenceMaxMillis: Int64

        public init(maxDecompressedBytes: Int = 64 << 20, maxHeadersPerRecord: Int = 1024, timestampDifferenceMaxMillis: Int64 = .max) {
            self.maxDecompressedBytes = maxDecompressedBytes
            self.maxHeadersPerRecord = maxHeadersPerRecord
            self.timestampDifferenceMaxMillis = timestampDifferenceMaxMillis
        }
    }

    /// A scratch buffer bigger than this is dropped after use rather than kept (one
    /// huge batch must not pin its size on every I/O thread for good).
    public static let scratchRetainedBytesMax = 8 << 20

    private var scratch: ByteBuffer

    public init(scratchCapacity: Int = 1 << 20) {
        scratch = ByteBufferAllocator().buffer(capacity: scratchCapacity)
    }

    /// Validates every record of every batch `produced` found in `buffer`.
    public mutating func validate(_ buffer: ByteBuffer, _ produced: ProducedBatches, limits: Limits, nowMillis: Int64) throws {
        for (index, header) in produced.batches {
            try validateBatch(in: buffer, at: index, header: header, limits: limits, nowMillis: nowMillis,
                              position: index - buffer.readerIndex)
        }
    }

    /// Validates the records of the batch at absolute `index` of `buffer` (whose header and
    /// CRC were checked already).
    public mutating func validateBatch(
        in buffer: ByteBuffer, at index: Int, header: RecordBatchHeader, limits: Limits, nowMillis: Int64, position: Int = 0
    ) throws {
        let codec = try CompressionCodec(attributeBits: header.attributes)
        let recordsStart = index + RecordBatchHeader.size
        let recordsBytes = header.totalBytes - RecordBatchHeader.size
        guard recordsBytes >= 0, recordsStart + recordsBytes <= buffer.writerIndex else {
            throw RecordsError(.truncated, "batch records run past the buffer", position: position)
        }
        let checkTimes = !header.isLogAppendTime && limits.timestampDifferenceMaxMillis != .max
        let walk = RecordWalk(header: header, maxHeadersPerRecord: limits.maxHeadersPerRecord,
                              checkTimestamps: checkTimes, nowMillis: nowMillis,
                              timestampDifferenceMaxMillis: limits.timestampDifferenceMaxMillis, batchPosition: position)
        if codec == .none {
            guard recordsBytes <= limits.maxDecompressedBytes else {
                throw RecordsError(.decompressedTooLarge, "records are \(recordsBytes) bytes, over the limit of \(limits.maxDecompressedBytes)", position: position)
            }
            try buffer.withUnsafeReadableBytes { raw in
                let start = recordsStart - buffer.readerIndex
                try walk.run(UnsafeRawBufferPointer(rebasing: raw[start..<(start + recordsBytes)]))
            }
            return
        }
        scratch.clear()
        defer {
            if scratch.capacity > Self.scratchRetainedBytesMax {
                scratch = ByteBufferAllocator().buffer(capacity: 1 << 20)
            }
        }
        do {
            try buffer.withUnsafeReadableBytes { raw in
                let start = recordsStart - buffer.readerIndex
                try Compression.decompress(UnsafeRawBufferPointer(rebasing: raw[start..<(start + recordsBytes)]), codec: codec,
                                           maxBytes: limits.maxDecompressedBytes, into: &scratch)
            }
        } catch var error as RecordsError {
            error.position = error.position ?? position
            throw error
        }
        try scratch.withUnsafeReadableBytes { try walk.run($0) }
    }
}

/// One pass over a batch's (decompressed) records: every field of every record, bounds
/// checked, nothing allocated.
struct RecordWalk {
    let header: RecordBatchHeader
    let maxHeadersPerRecord: Int
    let checkTimestamps: Bool
    let nowMillis: Int64
    let timestampDifferenceMaxMillis: Int64
    let batchPosition: Int

    func run(_ raw: UnsafeRawBufferPointer) throws {
        let count = Int(header.recordCount)
        // Every record takes at least 7 bytes; a larger count is a lie.
        guard count <= raw.count / RecordDecoder.minRecordBytes else {
            throw fail("header claims \(count) records in \(raw.count) bytes")
        }
        var p = 0
        for i in 0..<count {
            guard p < raw.count else { throw fail("the records end after \(i) of the \(count) the header claims") }
            let length = try varint32(raw, &p, end: raw.count)
            guard length >= 1, length <= raw.count - p else {
                throw fail("record \(i): length \(length) does not fit in the \(raw.count - p) bytes left")
            }
            let end = p + Int(length)
            p += 1 // attributes (unused in v2, any value)
            let timestampDelta = try varint64(raw, &p, end: end)
            let offsetDelta = try varint32(raw, &p, end: end)
            guard offsetDelta == Int32(i) else {
                throw fail("record \(i) has offset delta \(offsetDelta); deltas must run 0, 1, 2, …")
            }
            try skipBytesField(raw, &p, end: end, nullable: true, what: "key", record: i)
            try skipBytesField(raw, &p, end: end, nullable: true, what: "value", record: i)
            let headerCount = try varint32(raw, &p, end: end)
            guard headerCount >= 0, Int(headerCount) <= maxHeadersPerRecord else {
                throw fail("record \(i) has \(headerCount) headers (at most \(maxHeadersPerRecord))")
            }
            for _ in 0..<headerCount {
                try skipBytesField(raw, &p, end: end, nullable: false, what: "header key", record: i)
                try skipBytesField(raw, &p, end: end, nullable: true, what: "header value", record: i)
            }
            guard p == end else { throw fail("record \(i) has \(end - p) bytes after its last field") }
            if checkTimestamps {
                let (timestamp, overflow) = header.baseTimestamp.addingReportingOverflow(timestampDelta)
                guard !overflow, timestamp >= nowMillis - timestampDifferenceMaxMillis,
                      timestamp <= nowMillis + timestampDifferenceMaxMillis else {
                    throw RecordsError(.invalidTimestamp, "record \(i) has timestamp \(header.baseTimestamp) + \(timestampDelta), more than message.timestamp.difference.max.ms=\(timestampDifferenceMaxMillis) from the broker's clock (\(nowMillis))", position: batchPosition)
                }
            }
        }
        guard p == raw.count else { throw fail("\(raw.count - p) bytes after the last of \(count) records") }
    }

    private func fail(_ message: String) -> RecordsError {
        RecordsError(.badRecord, message, position: batchPosition)
    }

    private func skipBytesField(_ raw: UnsafeRawBufferPointer, _ p: inout Int, end: Int, nullable: Bool, what: String, record: Int) throws {
        let length = try varint32(raw, &p, end: end)
        if length == -1 && nullable { return }
        guard length >= 0, Int(length) <= end - p else {
            throw fail("record \(record): \(what) length \(length) does not fit in the \(end - p) bytes left")
        }
        p += Int(length)
    }

    @inline(__always)
    private func varint64(_ raw: UnsafeRawBufferPointer, _ p: inout Int, end: Int) throws -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = p
        let limit = min(end, p + Varint.maxBytes64)
        while i < limit {
            let byte = raw[i]
            result |= UInt64(byte & 0x7F) << shift
            i += 1
            if byte & 0x80 == 0 {
                p = i
                return Varint.unZigZag(result)
            }
            shift += 7
        }
        throw RecordsError(.badVarint, i - p >= Varint.maxBytes64 ? "varint longer than \(Varint.maxBytes64) bytes" : "varint runs off the end of its record", position: batchPosition)
    }

    @inline(__always)
    private func varint32(_ raw: UnsafeRawBufferPointer, _ p: inout Int, end: Int) throws -> Int32 {
        let start = p
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = p
        let limit = min(end, p + Varint.maxBytes32)
        while i < limit {
            let byte = raw[i]
            result |= UInt64(byte & 0x7F) << shift
            i += 1
            if byte & 0x80 == 0 {
                guard let value = Int32(exactly: Varint.unZigZag(result)) else {
                    throw RecordsError(.badVarint, "varint out of 32-bit range", position: batchPosition)
                }
                p = i
                return value
            }
            shift += 7
        }
        throw RecordsError(.badVarint, i - start >= Varint.maxBytes32 ? "varint longer than \(Varint.maxBytes32) bytes" : "varint runs off the end of its record", position: batchPosition)
    }
}

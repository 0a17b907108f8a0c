import NIOCore

/// Limits applied while decoding the records of a batch.
public struct RecordDecodingLimits: Sendable {
    /// Largest decompressed records section accepted (decompression-bomb guard).
    public var maxDecompressedBytes: Int
    /// Largest number of headers on one record.
    public var maxHeadersPerRecord: Int

    public init(maxDecompressedBytes: Int = 64 << 20, maxHeadersPerRecord: Int = 1024) {
        self.maxDecompressedBytes = maxDecompressedBytes
        self.maxHeadersPerRecord = maxHeadersPerRecord
    }

    public static let `default` = RecordDecodingLimits()
}

/// One whole, CRC-checked v2 record batch: its header and its exact bytes.
///
/// Obtain batches from a ``RecordBatchReader``; decode the records with
/// ``records(limits:)`` or ``recordDecoder(limits:)``.
public struct RecordBatch: Sendable {
    public let header: RecordBatchHeader
    /// The batch's bytes, exactly `header.totalBytes` readable.
    public let bytes: ByteBuffer

    /// Wraps bytes already validated by the reader.
    init(header: RecordBatchHeader, bytes: ByteBuffer) {
        assert(bytes.readableBytes == header.totalBytes)
        self.header = header
        self.bytes = bytes
    }

    public var codec: CompressionCodec {
        // Validated on read.
        CompressionCodec(rawValue: header.codecBits)!
    }

    /// The CRC-32C the bytes actually have (attributes to the end).
    public static func computeCRC(of buffer: ByteBuffer, at index: Int, totalBytes: Int) -> UInt32 {
        CRC32C.checksum(buffer, at: index + RecordBatchHeader.Position.attributes,
                        length: totalBytes - RecordBatchHeader.Position.attributes)
    }

    /// Computes and stores the CRC of the batch starting at `index` (its header must be in place).
    public static func writeCRC(in buffer: inout ByteBuffer, at index: Int) {
        let length: Int32 = buffer.getInteger(at: index + RecordBatchHeader.Position.batchLength)!
        let crc = computeCRC(of: buffer, at: index, totalBytes: RecordBatchHeader.logOverhead + Int(length))
        buffer.setInteger(crc, at: index + RecordBatchHeader.Position.crc)
    }

    /// Sets the base offset of the batch at `index` in place. The CRC does not cover it.
    @inlinable
    public static func setBaseOffset(_ offset: Int64, in buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(offset, at: index + RecordBatchHeader.Position.baseOffset)
    }

    /// The records section, decompressed if needed, as a buffer of encoded records.
    public func decompressedRecords(limits: RecordDecodingLimits = .default) throws -> ByteBuffer {
        var slice = bytes
        slice.moveReaderIndex(forwardBy: RecordBatchHeader.size)
        if codec == .none {
            guard slice.readableBytes <= limits.maxDecompressedBytes else {
                throw RecordsError(.decompressedTooLarge, "records are \(slice.readableBytes) bytes, over the limit of \(limits.maxDecompressedBytes)")
            }
            return slice
        }
        var out = ByteBuffer()
        try slice.withUnsafeReadableBytes { raw in
            try Compression.decompress(raw, codec: codec, maxBytes: limits.maxDecompressedBytes, into: &out)
        }
        return out
    }

    /// A decoder that yields the batch's records one at a time.
    public func recordDecoder(limits: RecordDecodingLimits = .default) throws -> RecordDecoder {
        let records = try decompressedRecords(limits: limits)
        // Every record takes at least 7 bytes; a larger count is a lie that must not drive allocations.
        guard Int(header.recordCount) <= records.readableBytes / RecordDecoder.minRecordBytes else {
            throw RecordsError(.badRecord, "header claims \(header.recordCount) records in \(records.readableBytes) bytes")
        }
        return RecordDecoder(header: header, records: records, limits: limits)
    }

    /// All records of the batch.
    public func records(limits: RecordDecodingLimits = .default) throws -> [Record] {
        var decoder = try recordDecoder(limits: limits)
        var result: [Record] = []
        result.reserveCapacity(Int(header.recordCount))
        while let record = try decoder.next() {
            result.append(record)
        }
        return result
    }
}

/// Decodes the records of one batch in order; `next()` returns nil after the last.
/// Checks that the records fill the section exactly and match the header's count.
public struct RecordDecoder {
    /// Smallest encoded record: length, attributes, timestamp delta, offset delta, key, value, header count.
    static let minRecordBytes = 7

    public let header: RecordBatchHeader
    private var records: ByteBuffer
    private let limits: RecordDecodingLimits
    private var decoded: Int32 = 0

    init(header: RecordBatchHeader, records: ByteBuffer, limits: RecordDecodingLimits) {
        self.header = header
        self.records = records
        self.limits = limits
    }

    public mutating func next() throws -> Record? {
        if decoded == header.recordCount {
            guard records.readableBytes == 0 else {
                throw RecordsError(.badRecord, "\(records.readableBytes) bytes after the last of \(header.recordCount) records")
            }
            return nil
        }
        let position = records.readerIndex
        let length = try Varint.read32(from: &records)
        guard length >= 0, Int(length) <= records.readableBytes else {
            throw RecordsError(.badRecord, "record length \(length) does not fit in the \(records.readableBytes) bytes left", position: position)
        }
        var body = records.readSlice(length: Int(length))!
        guard let _ = body.readInteger(as: Int8.self) else {
            throw RecordsError(.badRecord, "empty record", position: position)
        }
        let timestampDelta = try Varint.read(from: &body)
        let offsetDelta = try Varint.read32(from: &body)
        guard offsetDelta >= 0, offsetDelta <= header.lastOffsetDelta else {
            throw RecordsError(.badRecord, "offset delta \(offsetDelta) outside 0...\(header.lastOffsetDelta)", position: position)
        }
        let key = try Self.readBytesField(&body, position: position)
        let value = try Self.readBytesField(&body, position: position)
        let headerCount = try Varint.read32(from: &body)
        guard headerCount >= 0, Int(headerCount) <= limits.maxHeadersPerRecord else {
            throw RecordsError(.badRecord, "record has \(headerCount) headers", position: position)
        }
        var headers: [RecordHeader] = []
        if headerCount > 0 {
            headers.reserveCapacity(Int(headerCount))
            for _ in 0..<headerCount {
                guard var keyBytes = try Self.readBytesField(&body, position: position),
                      let key = keyBytes.readString(length: keyBytes.readableBytes) else {
                    throw RecordsError(.badRecord, "record header with a null key", position: position)
                }
                headers.append(RecordHeader(key: key, value: try Self.readBytesField(&body, position: position)))
            }
        }
        guard body.readableBytes == 0 else {
            throw RecordsError(.badRecord, "\(body.readableBytes) unread bytes at the end of a record", position: position)
        }
        decoded += 1
        let timestamp = header.isLogAppendTime ? header.maxTimestamp : header.baseTimestamp &+ timestampDelta
        return Record(offset: header.baseOffset + Int64(offsetDelta), timestamp: timestamp, key: key, value: value, headers: headers)
    }

    private static func readBytesField(_ body: inout ByteBuffer, position: Int) throws -> ByteBuffer? {
        let length = try Varint.read32(from: &body)
        if length == -1 { return nil }
        guard length >= 0, Int(length) <= body.readableBytes else {
            throw RecordsError(.badRecord, "field length \(length) does not fit in the \(body.readableBytes) bytes left", position: position)
        }
        return body.readSlice(length: Int(length))!
    }
}

import NIOCore

/// Accumulates records and closes them into the bytes of one Kafka v2 batch.
///
/// Records are encoded straight into one growing buffer as they are appended
/// (no per-record allocation); `build()` compresses that buffer once with the
/// chosen codec, writes the header and the CRC-32C.
///
/// ```swift
/// var builder = RecordBatchBuilder(codec: .lz4)
/// builder.append(key: nil, value: ByteBuffer(string: "hello"), timestamp: 1_700_000_000_000)
/// let batch: ByteBuffer = try builder.build()
/// ```
public struct RecordBatchBuilder: Sendable {
    public let codec: CompressionCodec
    public let compressionLevel: Int32?
    /// Offset written into the header; the broker patches it on append.
    public var baseOffset: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var partitionLeaderEpoch: Int32 = -1
    /// Sets the header's transactional bit (attributes 0x10): the batch belongs to its
    /// producer's ongoing transaction (read_committed readers wait for its marker).
    public var isTransactional = false

    private var records: ByteBuffer
    private var firstTimestamp: Int64 = 0
    private var maxTimestamp: Int64 = -1
    public private(set) var recordCount: Int = 0

    public init(
        codec: CompressionCodec = .none,
        compressionLevel: Int32? = nil,
        baseOffset: Int64 = 0,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        initialCapacity: Int = 16 * 1024,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        self.codec = codec
        self.compressionLevel = compressionLevel
        self.baseOffset = baseOffset
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.records = allocator.buffer(capacity: initialCapacity)
    }

    /// The header's transactional bit.
    public static let transactionalAttribute: Int16 = 0x10

    /// Uncompressed size so far: header plus encoded records. An upper bound for
    /// codec `none`, and what `batch.size`-style limits are checked against.
    public var uncompressedBytes: Int { RecordBatchHeader.size + records.readableBytes }

    public var isEmpty: Bool { recordCount == 0 }

    /// Encoded size of a record with these field sizes (the length prefix included).
    public static func encodedRecordBytes(
        keyBytes: Int?, valueBytes: Int?, headers: [RecordHeader] = [], timestampDelta: Int64 = 0, offsetDelta: Int = 0
    ) -> Int {
        let body = bodyBytes(keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
        return Varint.size(Int64(body)) + body
    }

    private static func bodyBytes(
        keyBytes: Int?, valueBytes: Int?, headers: [RecordHeader], timestampDelta: Int64, offsetDelta: Int
    ) -> Int {
        var n = 1 // attributes
        n += Varint.size(timestampDelta)
        n += Varint.size(Int64(offsetDelta))
        n += Varint.size(Int64(keyBytes ?? -1)) + (keyBytes ?? 0)
        n += Varint.size(Int64(valueBytes ?? -1)) + (valueBytes ?? 0)
        n += Varint.size(Int64(headers.count))
        for header in headers {
            let k = header.key.utf8.count
            let v = header.value?.readableBytes
            n += Varint.size(Int64(k)) + k + Varint.size(Int64(v ?? -1)) + (v ?? 0)
        }
        return n
    }

    /// Appends a record whose key and value are raw bytes.
    public mutating func append(
        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [RecordHeader] = [], timestamp: Int64
    ) {
        if recordCount == 0 {
            firstTimestamp = timestamp
        }
        maxTimestamp = max(maxTimestamp, timestamp)
        let timestampDelta = timestamp - firstTimestamp
        let offsetDelta = recordCount
        let body = Self.bodyBytes(
            keyBytes: key?.count, valueBytes: value?.count, headers: headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
        let total = Varint.size(Int64(body)) + body
        // One bounds check and one capacity check per record; fields go straight into the buffer.
        records.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            var p = Varint.encode(Int64(body), into: out, at: 0)
            let bodyStart = p
            out[p] = 0 // attributes
            p += 1
            p += Varint.encode(timestampDelta, into: out, at: p)
            p += Varint.encode(Int64(offsetDelta), into: out, at: p)
            p += Self.encodeBytesField(key, into: out, at: p)
            p += Self.encodeBytesField(value, into: out, at: p)
            p += Varint.encode(Int64(headers.count), into: out, at: p)
            for header in headers {
                var name = header.key
                let written = name.withUTF8 { utf8 in
                    var q = Varint.encode(Int64(utf8.count), into: out, at: p)
                    if utf8.count > 0 { (out.baseAddress! + p + q).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count) }
                    q += utf8.count
                    return q
                }
                p += written
                if let v = header.value {
                    p += v.withUnsafeReadableBytes { Self.encodeBytesField($0, into: out, at: p) }
                } else {
                    p += Varint.encode(-1, into: out, at: p)
                }
            }
            assert(p - bodyStart == body, "record body size mismatch")
            return p
        }
        recordCount += 1
    }

    @inline(__always)
    private static func encodeBytesField(_ bytes: UnsafeRawBufferPointer?, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        guard let bytes else { return Varint.encode(-1, into: out, at: position) }
        let n = Varint.encode(Int64(bytes.count), into: out, at: position)
        if bytes.count > 0 { (out.baseAddress! + position + n).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        return n + bytes.count
    }

    /// Appends a record with `ByteBuffer` key and value (their readable bytes).
    public mutating func append(key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64) {
        func withOptionalBytes<R>(_ b: ByteBuffer?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            guard let b else { return body(nil) }
            return b.withUnsafeReadableBytes { body($0) }
        }
        withOptionalBytes(key) { k in
            withOptionalBytes(value) { v in
                append(key: k, value: v, headers: headers, timestamp: timestamp)
            }
        }
    }

    /// Appends a record with byte-array key and value.
    public mutating func append(key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = [], timestamp: Int64) {
        func withOptionalBytes<R>(_ b: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            guard let b else { return body(nil) }
            return b.withUnsafeBytes { body($0) }
        }
        withOptionalBytes(key) { k in
            withOptionalBytes(value) { v in
                append(key: k, value: v, headers: headers, timestamp: timestamp)
            }
        }
    }

    /// Closes the batch: compresses the records, writes the header and the CRC.
    /// The builder can be reused after `reset()`.
    public func build(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        let capacity = codec == .none ? maxBuiltBytes : RecordBatchHeader.size + records.readableBytes / 2 + 64
        var out = allocator.buffer(capacity: capacity)
        try build(into: &out)
        return out
    }

    /// Largest size `build` can produce for the records appended so far (the
    /// codec's worst case, for incompressible records).
    public var maxBuiltBytes: Int {
        RecordBatchHeader.size + Compression.maxCompressedBytes(records.readableBytes, codec: codec)
    }

    /// Appends the closed batch to `out` (after its readable bytes): compresses the
    /// records, writes the header and the CRC. Lets a producer put many batches into
    /// one reused request buffer. Returns the number of bytes written.
    @discardableResult
    public func build(into out: inout ByteBuffer) throws -> Int {
        precondition(recordCount > 0, "a record batch needs at least one record")
        let start = out.writerIndex
        out.writeRepeatingByte(0, count: RecordBatchHeader.size)
        if codec == .none {
            out.writeImmutableBuffer(records)
        } else {
            try records.withUnsafeReadableBytes { raw in
                try Compression.compress(raw, codec: codec, level: compressionLevel, into: &out)
            }
        }
        let total = out.writerIndex - start
        assert(total <= maxBuiltBytes, "batch larger than its worst case")
        let header = RecordBatchHeader(
            baseOffset: baseOffset,
            batchLength: Int32(total - RecordBatchHeader.logOverhead),
            partitionLeaderEpoch: partitionLeaderEpoch,
            magic: RecordBatchHeader.currentMagic,
            crc: 0,
            attributes: codec.rawValue | (isTransactional ? Self.transactionalAttribute : 0),
            lastOffsetDelta: Int32(recordCount - 1),
            baseTimestamp: firstTimestamp,
            maxTimestamp: maxTimestamp,
            producerId: producerId,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: Int32(recordCount))
        header.write(to: &out, at: start)
        RecordBatch.writeCRC(in: &out, at: start)
        return total
    }

    /// Forgets the records so the builder (and its buffer) can be reused.
    public mutating func reset(baseSequence: Int32 = -1) {
        records.clear()
        recordCount = 0
        maxTimestamp = -1
        firstTimestamp = 0
        self.baseSequence = baseSequence
    }
}

extension RecordBatchHeader {
    /// Memberwise initialiser for building headers.
    public init(
        baseOffset: Int64, batchLength: Int32, partitionLeaderEpoch: Int32, magic: Int8, crc: UInt32, attributes: Int16,
        lastOffsetDelta: Int32, baseTimestamp: Int64, maxTimestamp: Int64, producerId: Int64, producerEpoch: Int16,
        baseSequence: Int32, recordCount: Int32
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordCount = recordCount
    }
}

import NIOCore

/// The fixed 61-byte header of a Kafka v2 record batch (magic 2).
///
/// Layout, big-endian: baseOffset i64 @0, batchLength i32 @8,
/// partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21,
/// lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
/// producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
/// recordCount i32 @57, records @61. The CRC-32C covers attributes to the end,
/// so the base offset and leader epoch can be patched without recomputing it.
public struct RecordBatchHeader: Hashable, Sendable {
    /// Size of the header in bytes.
    public static let size = 61
    /// Bytes before the `batchLength` field's coverage starts (baseOffset + batchLength).
    public static let logOverhead = 12
    /// Smallest legal `batchLength`: the header minus the log overhead.
    public static let minBatchLength = Int32(size - logOverhead)
    /// The only supported magic byte.
    public static let currentMagic: Int8 = 2

    /// Field positions inside the header.
    public enum Position {
        public static let baseOffset = 0
        public static let batchLength = 8
        public static let partitionLeaderEpoch = 12
        public static let magic = 16
        public static let crc = 17
        public static let attributes = 21
        public static let lastOffsetDelta = 23
        public static let baseTimestamp = 27
        public static let maxTimestamp = 35
        public static let producerId = 43
        public static let producerEpoch = 51
        public static let baseSequence = 53
        public static let recordCount = 57
        public static let records = 61
    }

    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    /// Whole size of the batch on disk and on the wire.
    public var totalBytes: Int { Self.logOverhead + Int(batchLength) }
    /// Offset of the last record in the batch.
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    /// Offset just past the batch.
    public var nextOffset: Int64 { lastOffset + 1 }
    /// Raw codec bits (0–2) of the attributes.
    public var codecBits: Int16 { attributes & 0x07 }
    /// Bit 3: timestamps are log-append time rather than create time.
    public var isLogAppendTime: Bool { attributes & 0x08 != 0 }
    /// Bit 4: part of a transaction.
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    /// Bit 5: a control batch (transaction markers).
    public var isControl: Bool { attributes & 0x20 != 0 }

    /// Reads the header at absolute index `index` of `buffer` without validating it.
    /// Returns nil when fewer than 61 bytes are readable there.
    @inlinable
    public init?(buffer: ByteBuffer, at index: Int) {
        guard index >= buffer.readerIndex, buffer.writerIndex - index >= Self.size else { return nil }
        baseOffset = buffer.getInteger(at: index + Position.baseOffset)!
        batchLength = buffer.getInteger(at: index + Position.batchLength)!
        partitionLeaderEpoch = buffer.getInteger(at: index + Position.partitionLeaderEpoch)!
        magic = buffer.getInteger(at: index + Position.magic)!
        crc = buffer.getInteger(at: index + Position.crc)!
        attributes = buffer.getInteger(at: index + Position.attributes)!
        lastOffsetDelta = buffer.getInteger(at: index + Position.lastOffsetDelta)!
        baseTimestamp = buffer.getInteger(at: index + Position.baseTimestamp)!
        maxTimestamp = buffer.getInteger(at: index + Position.maxTimestamp)!
        producerId = buffer.getInteger(at: index + Position.producerId)!
        producerEpoch = buffer.getInteger(at: index + Position.producerEpoch)!
        baseSequence = buffer.getInteger(at: index + Position.baseSequence)!
        recordCount = buffer.getInteger(at: index + Position.recordCount)!
    }

    /// Writes the header at absolute index `index` of `buffer` (which must already hold 61 bytes there).
    @inlinable
    public func write(to buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(baseOffset, at: index + Position.baseOffset)
        buffer.setInteger(batchLength, at: index + Position.batchLength)
        buffer.setInteger(partitionLeaderEpoch, at: index + Position.partitionLeaderEpoch)
        buffer.setInteger(magic, at: index + Position.magic)
        buffer.setInteger(crc, at: index + Position.crc)
        buffer.setInteger(attributes, at: index + Position.attributes)
        buffer.setInteger(lastOffsetDelta, at: index + Position.lastOffsetDelta)
        buffer.setInteger(baseTimestamp, at: index + Position.baseTimestamp)
        buffer.setInteger(maxTimestamp, at: index + Position.maxTimestamp)
        buffer.setInteger(producerId, at: index + Position.producerId)
        buffer.setInteger(producerEpoch, at: index + Position.producerEpoch)
        buffer.setInteger(baseSequence, at: index + Position.baseSequence)
        buffer.setInteger(recordCount, at: index + Position.recordCount)
    }

    /// Checks what can be checked from the header alone: magic, length bounds, codec, counts.
    /// `available` is the number of bytes present from the start of the batch.
    public func validateShape(available: Int, position: Int, maxBatchBytes: Int = Int(Int32.max)) throws {
        guard magic == Self.currentMagic else {
            throw RecordsError(.badMagic, "magic byte is \(magic); only record batch v2 (magic 2) is supported", position: position)
        }
        guard batchLength >= Self.minBatchLength else {
            throw RecordsError(.badLength, "batch length \(batchLength) is smaller than a batch header", position: position)
        }
        guard totalBytes <= maxBatchBytes else {
            throw RecordsError(.batchTooLarge, "batch of \(totalBytes) bytes is over the limit of \(maxBatchBytes)", position: position)
        }
        guard totalBytes <= available else {
            throw RecordsError(.truncated, "batch declares \(totalBytes) bytes but only \(available) are present", position: position)
        }
        guard recordCount >= 0, lastOffsetDelta >= 0 else {
            throw RecordsError(.badRecord, "negative record count \(recordCount) or last offset delta \(lastOffsetDelta)", position: position)
        }
        _ = try CompressionCodec(attributeBits: attributes)
    }
}

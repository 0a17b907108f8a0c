import NIOCore

/// Writes Kafka's primitive types into a `ByteBuffer`.
///
/// Records given as `.deferred(byteCount:)` are not written: the writer emits their
/// length prefix and remembers where in the buffer they belong (`deferredSpans`), so
/// the caller can send the buffer up to that point, then the records themselves
/// (a `FileRegion`), then the rest.
public struct KafkaWriter {
    /// Records that belong at `position` (an index into `buffer`), `byteCount` long.
    public struct DeferredSpan: Hashable, Sendable {
        public var position: Int
        public var byteCount: Int
    }

    public var buffer: ByteBuffer
    /// Deferred records in the order they were written (positions ascending).
    public private(set) var deferredSpans: [DeferredSpan] = []
    /// The total size of the deferred records.
    public private(set) var deferredByteCount: Int = 0

    public init(buffer: ByteBuffer = ByteBuffer()) {
        self.buffer = buffer
    }

    /// The bytes this message occupies on the wire: the buffer plus the deferred records.
    public var wireByteCount: Int { buffer.readableBytes + deferredByteCount }

    public mutating func writeInt8(_ value: Int8) { buffer.writeInteger(value) }
    public mutating func writeInt16(_ value: Int16) { buffer.writeInteger(value) }
    public mutating func writeInt32(_ value: Int32) { buffer.writeInteger(value) }
    public mutating func writeInt64(_ value: Int64) { buffer.writeInteger(value) }
    public mutating func writeUInt16(_ value: UInt16) { buffer.writeInteger(value) }
    public mutating func writeFloat64(_ value: Double) { buffer.writeInteger(value.bitPattern) }
    public mutating func writeBool(_ value: Bool) { buffer.writeInteger(UInt8(value ? 1 : 0)) }

    public mutating func writeUUID(_ value: KafkaUUID) {
        buffer.writeInteger(value.high)
        buffer.writeInteger(value.low)
    }

    public mutating func writeUnsignedVarint(_ value: UInt32) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }

    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    public mutating func writeVarlong(_ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }

    /// A length prefix; nil writes null (-1, or 0 when compact).
    private mutating func writeLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(length.map { UInt32($0 + 1) } ?? 0)
        } else if wide {
            writeInt32(length.map { Int32($0) } ?? -1)
        } else {
            precondition((length ?? 0) <= Int(Int16.max), "Kafka strings hold at most 32767 bytes")
            writeInt16(length.map { Int16($0) } ?? -1)
        }
    }

    /// Longest string Kafka's int16 length prefix can carry.
    public static let stringBytesMax = Int(Int16.max)

    /// A string; one longer than `stringBytesMax` (an error message naming a huge topic
    /// name, say) is cut at a character boundary rather than corrupting the prefix.
    public mutating func writeString(_ value: String, compact: Bool) {
        var value = value
        value.withUTF8 { utf8 in
            var count = utf8.count
            if count > Self.stringBytesMax {
                count = Self.stringBytesMax
                // Back up to the start of a UTF-8 character (not a continuation byte).
                while count > 0 && utf8[count] & 0xC0 == 0x80 { count -= 1 }
            }
            writeLength(count, compact: compact, wide: false)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[..<count]))
        }
    }

    /// A nullable string; where the version has no null (`nullable` false), nil is written as "".
    public mutating func writeNullableString(_ value: String?, compact: Bool, nullable: Bool = true) {
        if let value {
            writeString(value, compact: compact)
        } else if nullable {
            writeLength(nil, compact: compact, wide: false)
        } else {
            writeString("", compact: compact)
        }
    }

    public mutating func writeBytes(_ value: ByteBuffer, compact: Bool) {
        writeLength(value.readableBytes, compact: compact, wide: true)
        buffer.writeImmutableBuffer(value)
    }

    public mutating func writeNullableBytes(_ value: ByteBuffer?, compact: Bool, nullable: Bool = true) {
        if let value {
            writeBytes(value, compact: compact)
        } else {
            writeLength(nullable ? nil : 0, compact: compact, wide: true)
        }
    }

    /// A records field; `.deferred` writes only the prefix and records a `DeferredSpan`.
    public mutating func writeRecords(_ value: KafkaRecords?, compact: Bool, nullable: Bool = true) {
        switch value {
        case .none:
            writeLength(nullable ? nil : 0, compact: compact, wide: true)
        case .buffer(let bytes):
            writeBytes(bytes, compact: compact)
        case .deferred(let byteCount):
            precondition(byteCount >= 0 && byteCount <= Int(Int32.max), "records span of \(byteCount) bytes")
            writeLength(byteCount, compact: compact, wide: true)
            if byteCount > 0 {
                deferredSpans.append(DeferredSpan(position: buffer.writerIndex, byteCount: byteCount))
                deferredByteCount += byteCount
            }
        }
    }

    public mutating func writeArray<T>(_ values: [T], compact: Bool, _ element: (inout KafkaWriter, T) -> Void) {
        writeLength(values.count, compact: compact, wide: true)
        for value in values { element(&self, value) }
    }

    /// A nullable array; where the version has no null (`nullable` false), nil is written as [].
    public mutating func writeNullableArray<T>(
        _ values: [T]?, compact: Bool, nullable: Bool = true, _ element: (inout KafkaWriter, T) -> Void
    ) {
        if let values {
            writeArray(values, compact: compact, element)
        } else {
            writeLength(nullable ? nil : 0, compact: compact, wide: true)
        }
    }

    public mutating func writeTagCount(_ count: UInt32) { writeUnsignedVarint(count) }

    /// One tagged field: tag, size, then the value `body` writes.
    public mutating func writeTaggedField(tag: UInt32, _ body: (inout KafkaWriter) -> Void) {
        var field = KafkaWriter()
        body(&field)
        precondition(field.deferredSpans.isEmpty, "records cannot be deferred inside a tagged field")
        writeUnsignedVarint(tag)
        writeUnsignedVarint(UInt32(field.buffer.readableBytes))
        buffer.writeImmutableBuffer(field.buffer)
    }
}

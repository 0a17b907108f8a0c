import NIOCore

/// Reads Kafka's primitive types from a `ByteBuffer`, throwing `KafkaDecodingError`.
///
/// Every length and count is checked against the bytes left before anything is
/// allocated: an array can hold at most one element per remaining byte, so a count of
/// two billion in a 30-byte request fails at once. Strings, bytes and records are
/// slices of the input (records and bytes are not copied).
public struct KafkaReader {
    /// The unread input.
    public var buffer: ByteBuffer

    public init(_ buffer: ByteBuffer) {
        self.buffer = buffer
    }

    /// Bytes not yet read.
    public var remaining: Int { buffer.readableBytes }

    // MARK: fixed-width integers

    @inline(__always)
    private mutating func readFixed<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws -> T {
        guard let value = buffer.readInteger(as: T.self) else {
            throw KafkaDecodingError(.truncated, "\(what) needs \(MemoryLayout<T>.size) bytes, \(remaining) left")
        }
        return value
    }

    public mutating func readInt8() throws -> Int8 { try readFixed(Int8.self, "int8") }
    public mutating func readInt16() throws -> Int16 { try readFixed(Int16.self, "int16") }
    public mutating func readInt32() throws -> Int32 { try readFixed(Int32.self, "int32") }
    public mutating func readInt64() throws -> Int64 { try readFixed(Int64.self, "int64") }
    public mutating func readUInt16() throws -> UInt16 { try readFixed(UInt16.self, "uint16") }
    /// Kafka's float64: an IEEE 754 double, big-endian.
    public mutating func readFloat64() throws -> Double { Double(bitPattern: try readFixed(UInt64.self, "float64")) }
    /// Kafka's boolean: one byte, non-zero is true.
    public mutating func readBool() throws -> Bool { try readFixed(UInt8.self, "bool") != 0 }

    public mutating func readUUID() throws -> KafkaUUID {
        let high = try readFixed(UInt64.self, "uuid")
        let low = try readFixed(UInt64.self, "uuid")
        return KafkaUUID(high: high, low: low)
    }

    // MARK: varints

    /// An unsigned LEB128 varint of at most 5 bytes (32 bits).
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = buffer.readInteger(as: UInt8.self) else {
                throw KafkaDecodingError(.truncated, "unsigned varint")
            }
            if shift == 28 && byte > 0x0F {
                throw KafkaDecodingError(.varintTooLong, "unsigned varint over 32 bits")
            }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// A zig-zag varint (32 bits).
    public mutating func readVarint() throws -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A zig-zag varlong (64 bits, at most 10 bytes).
    public mutating func readVarlong() throws -> Int64 {
        var raw: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = buffer.readInteger(as: UInt8.self) else {
                throw KafkaDecodingError(.truncated, "varlong")
            }
            if shift == 63 && byte > 0x01 {
                throw KafkaDecodingError(.varintTooLong, "varlong over 64 bits")
            }
            raw |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    // MARK: lengths

    /// Reads a length prefix: int16/int32 (`-1` = null) or, when compact, an unsigned
    /// varint holding length + 1 (`0` = null). Returns nil for null; checks the length
    /// against the remaining bytes (each unit takes at least `unitBytesMin` bytes).
    private mutating func readLength(compact: Bool, wide: Bool, unitBytesMin: Int, _ what: StaticString) throws -> Int? {
        let length: Int
        if compact {
            let raw = try readUnsignedVarint()
            if raw == 0 { return nil }
            length = Int(raw) - 1
        } else {
            let raw = wide ? Int(try readInt32()) : Int(try readInt16())
            if raw == -1 { return nil }
            guard raw >= 0 else { throw KafkaDecodingError(.invalidLength, "\(what) length \(raw)") }
            length = raw
        }
        guard length <= remaining / unitBytesMin else {
            throw KafkaDecodingError(.invalidLength, "\(what) length \(length) exceeds the \(remaining) bytes left")
        }
        return length
    }

    private mutating func readSlice(_ length: Int) -> ByteBuffer {
        // The caller checked the length against `remaining`.
        buffer.readSlice(length: length)!
    }

    // MARK: strings, bytes, records

    public mutating func readNullableString(compact: Bool, nullable: Bool = true) throws -> String? {
        guard let length = try readLength(compact: compact, wide: false, unitBytesMin: 1, "string") else {
            guard nullable else { throw KafkaDecodingError(.unexpectedNull, "null string") }
            return nil
        }
        return buffer.readString(length: length)!
    }

    public mutating func readString(compact: Bool) throws -> String {
        try readNullableString(compact: compact, nullable: false)!
    }

    public mutating func readNullableBytes(compact: Bool, nullable: Bool = true) throws -> ByteBuffer? {
        guard let length = try readLength(compact: compact, wide: true, unitBytesMin: 1, "bytes") else {
            guard nullable else { throw KafkaDecodingError(.unexpectedNull, "null bytes") }
            return nil
        }
        return readSlice(length)
    }

    public mutating func readBytes(compact: Bool) throws -> ByteBuffer {
        try readNullableBytes(compact: compact, nullable: false)!
    }

    /// A records field: a slice of the input (no copy), or nil for null.
    public mutating func readRecords(compact: Bool, nullable: Bool = true) throws -> KafkaRecords? {
        try readNullableBytes(compact: compact, nullable: nullable).map { .buffer($0) }
    }

    // MARK: arrays

    /// An array; every element takes at least one byte, so the count is bounded by the bytes left.
    public mutating func readNullableArray<T>(
        compact: Bool, nullable: Bool = true, _ element: (inout KafkaReader) throws -> T
    ) throws -> [T]? {
        guard let count = try readLength(compact: compact, wide: true, unitBytesMin: 1, "array") else {
            guard nullable else { throw KafkaDecodingError(.unexpectedNull, "null array") }
            return nil
        }
        var result: [T] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            result.append(try element(&self))
        }
        return result
    }

    public mutating func readArray<T>(compact: Bool, _ element: (inout KafkaReader) throws -> T) throws -> [T] {
        try readNullableArray(compact: compact, nullable: false, element)!
    }

    // MARK: tagged fields

    /// The number of tagged fields in a tag section (each takes at least two bytes).
    public mutating func readTagCount() throws -> UInt32 {
        let count = try readUnsignedVarint()
        guard Int(count) <= remaining / 2 else {
            throw KafkaDecodingError(.invalidLength, "tag count \(count) exceeds the \(remaining) bytes left")
        }
        return count
    }

    /// One tagged field: its tag and a reader over exactly its bytes (consumed from this reader).
    public mutating func readTaggedField() throws -> (tag: UInt32, reader: KafkaReader) {
        let tag = try readUnsignedVarint()
        let size = Int(try readUnsignedVarint())
        guard size <= remaining else {
            throw KafkaDecodingError(.invalidLength, "tagged field \(tag) of \(size) bytes exceeds the \(remaining) bytes left")
        }
        return (tag, KafkaReader(readSlice(size)))
    }
}

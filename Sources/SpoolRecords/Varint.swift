import NIOCore

/// Kafka's zig-zag variable-length integers (protobuf style, 7 bits a byte,
/// least significant group first), used for every field inside a v2 record.
public enum Varint {
    /// Largest encoded size of a 32-bit varint.
    public static let maxBytes32 = 5
    /// Largest encoded size of a 64-bit varint.
    public static let maxBytes64 = 10

    @inlinable
    public static func zigZag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inlinable
    public static func unZigZag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    /// Number of bytes `value` takes once zig-zag encoded.
    @inlinable
    public static func size(_ value: Int64) -> Int {
        var v = zigZag(value)
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// Appends the zig-zag encoding of `value` to `buffer`.
    @inlinable
    public static func write(_ value: Int64, to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes64) { encode(value, into: $0, at: 0) }
    }

    /// Encodes `value` at byte `position` of `out` (which must have room for it);
    /// returns the number of bytes written. The hot path of record encoding.
    @inlinable
    public static func encode(_ value: Int64, into out: UnsafeMutableRawBufferPointer, at position: Int) -> Int {
        var v = zigZag(value)
        var p = position
        while v >= 0x80 {
            out[p] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            p += 1
        }
        out[p] = UInt8(truncatingIfNeeded: v)
        return p + 1 - position
    }

    /// Reads a zig-zag varint of at most `maxBytes` bytes, moving the reader index.
    @inlinable
    public static func read(from buffer: inout ByteBuffer, maxBytes: Int = maxBytes64) throws -> Int64 {
        let start = buffer.readerIndex
        // Decode straight from the bytes: one closure per varint, not a bounds-checked read per byte.
        let (value, length) = buffer.withUnsafeReadableBytes { raw -> (UInt64, Int) in
            var result: UInt64 = 0
            var shift: UInt64 = 0
            let limit = Swift.min(maxBytes, raw.count)
            var i = 0
            while i < limit {
                let byte = raw[i]
                result |= UInt64(byte & 0x7f) << shift
                i += 1
                if byte & 0x80 == 0 { return (result, i) }
                shift += 7
            }
            return (0, -i) // incomplete or too long
        }
        guard length > 0 else {
            if -length >= maxBytes {
                throw RecordsError(.badVarint, "varint longer than \(maxBytes) bytes", position: start)
            }
            throw RecordsError(.badVarint, "varint runs off the end of the data", position: start)
        }
        buffer.moveReaderIndex(forwardBy: length)
        return unZigZag(value)
    }

    /// Reads a 32-bit varint (at most 5 bytes, value in Int32 range).
    @inlinable
    public static func read32(from buffer: inout ByteBuffer) throws -> Int32 {
        let start = buffer.readerIndex
        let v = try read(from: &buffer, maxBytes: maxBytes32)
        guard let narrow = Int32(exactly: v) else {
            throw RecordsError(.badVarint, "varint \(v) out of 32-bit range", position: start)
        }
        return narrow
    }
}

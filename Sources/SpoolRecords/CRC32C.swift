import CSpoolNative
import NIOCore

/// CRC-32C (Castagnoli), the checksum of Kafka v2 record batches.
///
/// Uses the SSE4.2 instruction when the CPU has it (chosen once at run time),
/// a slicing-by-8 table otherwise. Both paths are exposed for tests and benchmarks.
///
/// ```swift
/// CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283
/// ```
public enum CRC32C {
    /// Which implementation to run.
    public enum Implementation: Sendable {
        case automatic, hardware, software
    }

    /// True when the SSE4.2 path is in use.
    public static var hardwareAvailable: Bool { spool_crc32c_hardware_available() != 0 }

    /// The CRC of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(
        _ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0, using implementation: Implementation = .automatic
    ) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        switch implementation {
        case .automatic: return spool_crc32c(crc, base, bytes.count)
        case .hardware:
            precondition(hardwareAvailable, "CRC-32C hardware path requested on a CPU without SSE4.2")
            return spool_crc32c_hardware(crc, base, bytes.count)
        case .software: return spool_crc32c_software(crc, base, bytes.count)
        }
    }

    /// The CRC of a byte array.
    public static func checksum(_ bytes: [UInt8], using implementation: Implementation = .automatic) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, using: implementation) }
    }

    /// The CRC of `length` readable bytes of `buffer` starting at absolute index `index`.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int) -> UInt32 {
        precondition(index >= buffer.readerIndex && index + length <= buffer.writerIndex, "CRC span outside the buffer")
        return buffer.withUnsafeReadableBytes { all in
            checksum(UnsafeRawBufferPointer(rebasing: all[(index - buffer.readerIndex)..<(index - buffer.readerIndex + length)]))
        }
    }
}

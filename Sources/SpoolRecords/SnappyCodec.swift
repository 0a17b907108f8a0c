import CSnappy
import NIOCore

/// Kafka's snappy (codec 2), through libsnappy's C API.
///
/// Two framings are in use and both are read:
/// - **xerial** (snappy-java's `SnappyOutputStream`, what Kafka's Java client and broker
///   write, and kafka-python): a 16-byte header (`\x82SNAPPY\0`, then two big-endian
///   int32s, version and compatible version, both 1), then chunks of
///   `[int32 big-endian length][raw snappy block]`, each block holding at most 32 KiB of
///   input. Several such streams laid end to end are read as one, as snappy-java does.
/// - **raw**: one snappy block for the whole records section (what librdkafka writes).
///
/// A records section that begins with the 8-byte magic is read as xerial, anything else
/// as raw; librdkafka and kafka-python decide the same way. The version fields are not
/// checked (some writers put them little-endian; kafka-python ignores them too).
///
/// Spool **writes xerial**: every reader that can read what the Java client writes
/// (snappy-java, librdkafka, kafka-python, Sarama, franz-go) reads it, whereas raw blocks
/// are read only by readers that also handle librdkafka's output.
enum SnappyCodec {
    /// `\x82SNAPPY\0`: the first 8 bytes of a xerial stream.
    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    /// Magic, version (1) and compatible version (1), as snappy-java writes them.
    static let xerialHeader: [UInt8] = xerialMagic + [0, 0, 0, 1, 0, 0, 0, 1]
    /// Input bytes per xerial chunk: snappy-java's default block size, which Kafka uses.
    static let xerialChunkInputBytes = 32 << 10
    /// The length prefix of a xerial chunk.
    static let chunkLengthBytes = 4

    /// Appends the xerial-framed snappy form of `input` to `output`.
    static func compress(_ input: UnsafeRawBufferPointer, into output: inout ByteBuffer) throws {
        let bound = maxCompressedBytes(input.count)
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            let base = out.baseAddress!
            xerialHeader.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var written = xerialHeader.count
            var consumed = 0
            while consumed < input.count {
                let chunk = min(xerialChunkInputBytes, input.count - consumed)
                var blockBytes = out.count - written - chunkLengthBytes
                let status = snappy_compress(
                    input.baseAddress!.advanced(by: consumed).assumingMemoryBound(to: CChar.self), chunk,
                    base.advanced(by: written + chunkLengthBytes).assumingMemoryBound(to: CChar.self), &blockBytes)
                guard status == SNAPPY_OK else {
                    throw RecordsError(.compressionFailed, "snappy_compress failed with status \(status.rawValue)")
                }
                storeBigEndian(UInt32(blockBytes), at: base.advanced(by: written))
                written += chunkLengthBytes + blockBytes
                consumed += chunk
            }
            return written
        }
    }

    /// The most bytes `compress` appends for `inputBytes` bytes of input.
    static func maxCompressedBytes(_ inputBytes: Int) -> Int {
        let fullChunks = inputBytes / xerialChunkInputBytes
        let rest = inputBytes % xerialChunkInputBytes
        var bound = xerialHeader.count + fullChunks * (chunkLengthBytes + snappy_max_compressed_length(xerialChunkInputBytes))
        if rest > 0 { bound += chunkLengthBytes + snappy_max_compressed_length(rest) }
        return bound
    }

    /// Appends the decompressed form of xerial or raw snappy `input` to `output`, refusing
    /// to produce more than `maxBytes`. A snappy block states its uncompressed length in
    /// its first bytes; that length is checked against the limit before anything is
    /// allocated for it.
    static func decompress(_ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer) throws {
        if hasXerialMagic(input, at: 0) {
            try decompressXerial(input, maxBytes: maxBytes, into: &output)
        } else {
            _ = try decompressBlock(UnsafeRawBufferPointer(rebasing: input[...]), budget: maxBytes, maxBytes: maxBytes, into: &output)
        }
    }

    private static func decompressXerial(_ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer) throws {
        var position = 0
        var produced = 0
        while position < input.count {
            // A stream header, at the start or where a chunk length would be (concatenated streams).
            if hasXerialMagic(input, at: position) {
                guard input.count - position >= xerialHeader.count else {
                    throw RecordsError(.corruptCompressedData, "snappy (xerial) header cut after \(input.count - position) bytes")
                }
                position += xerialHeader.count
                continue
            }
            guard input.count - position >= chunkLengthBytes else {
                throw RecordsError(.corruptCompressedData, "snappy (xerial) chunk length cut after \(input.count - position) bytes")
            }
            let length = Int(Int32(bitPattern: loadBigEndian(input, at: position)))
            position += chunkLengthBytes
            guard length > 0, length <= input.count - position else {
                throw RecordsError(.corruptCompressedData, "snappy (xerial) chunk of \(length) bytes does not fit in the \(input.count - position) bytes left")
            }
            let block = UnsafeRawBufferPointer(rebasing: input[position..<(position + length)])
            produced += try decompressBlock(block, budget: maxBytes - produced, maxBytes: maxBytes, into: &output)
            position += length
        }
    }

    /// Decompresses one raw snappy block, at most `budget` bytes; returns the bytes written.
    private static func decompressBlock(
        _ block: UnsafeRawBufferPointer, budget: Int, maxBytes: Int, into output: inout ByteBuffer
    ) throws -> Int {
        guard let base = block.baseAddress, block.count > 0 else {
            throw RecordsError(.corruptCompressedData, "empty snappy block")
        }
        let compressed = base.assumingMemoryBound(to: CChar.self)
        var length = 0
        guard snappy_uncompressed_length(compressed, block.count, &length) == SNAPPY_OK else {
            throw RecordsError(.corruptCompressedData, "snappy block has no valid length header")
        }
        guard length <= budget else {
            throw RecordsError(.decompressedTooLarge, "snappy records inflate past the limit of \(maxBytes) bytes")
        }
        guard length > 0 else {
            guard snappy_validate_compressed_buffer(compressed, block.count) == SNAPPY_OK else {
                throw RecordsError(.corruptCompressedData, "snappy block is corrupt")
            }
            return 0
        }
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
            var written = length
            // snappy_uncompress checks every copy against the input and output bounds: corrupt
            // data fails with SNAPPY_INVALID_INPUT, never reads or writes out of bounds.
            let status = snappy_uncompress(compressed, block.count, out.baseAddress!.assumingMemoryBound(to: CChar.self), &written)
            guard status == SNAPPY_OK, written == length else {
                throw RecordsError(.corruptCompressedData, "snappy block is corrupt (status \(status.rawValue))")
            }
            return written
        }
        return length
    }

    private static func hasXerialMagic(_ input: UnsafeRawBufferPointer, at position: Int) -> Bool {
        guard input.count - position >= xerialMagic.count else { return false }
        for i in 0..<xerialMagic.count where input[position + i] != xerialMagic[i] { return false }
        return true
    }

    private static func loadBigEndian(_ input: UnsafeRawBufferPointer, at position: Int) -> UInt32 {
        UInt32(input[position]) << 24 | UInt32(input[position + 1]) << 16 | UInt32(input[position + 2]) << 8 | UInt32(input[position + 3])
    }

    private static func storeBigEndian(_ value: UInt32, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: value.bigEndian, as: UInt32.self)
    }
}

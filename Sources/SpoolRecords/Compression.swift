import CLZ4
import CZlib
import NIOCore

/// Whole-buffer compression and bounded decompression for the batch codecs.
///
/// gzip uses zlib with a gzip wrapper (windowBits 31); lz4 uses the LZ4 *frame*
/// format with independent 64 KiB blocks, which is what Kafka v2 clients write and
/// read; snappy writes the xerial framing and reads it and raw blocks (`SnappyCodec`);
/// zstd uses the zstd frame format (`ZstdCodec`). Decompression never produces more
/// than `maxBytes`: a batch that would inflate past it is rejected as a decompression bomb.
public enum Compression {
    /// Default zlib level (6, zlib's own default); Kafka uses the same.
    public static let gzipDefaultLevel: Int32 = 6

    /// Appends the compressed form of `input` to `output`.
    public static func compress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, level: Int32? = nil, into output: inout ByteBuffer
    ) throws {
        switch codec {
        case .none:
            output.writeBytes(input)
        case .gzip:
            try gzipCompress(input, level: level ?? gzipDefaultLevel, into: &output)
        case .lz4:
            try lz4Compress(input, level: level ?? 0, into: &output)
        case .snappy:
            try SnappyCodec.compress(input, into: &output)
        case .zstd:
            try ZstdCodec.compress(input, level: level, into: &output)
        }
    }

    /// The most bytes `compress` can append for `inputBytes` bytes of input
    /// (incompressible data grows a little: block and frame headers).
    public static func maxCompressedBytes(_ inputBytes: Int, codec: CompressionCodec) -> Int {
        switch codec {
        case .none:
            return inputBytes
        case .gzip:
            // zlib's deflateBound for the default window and memory level, plus the gzip wrapper.
            return inputBytes + (inputBytes >> 12) + (inputBytes >> 14) + (inputBytes >> 25) + 13 + 18
        case .lz4:
            var prefs = lz4Preferences(level: 0)
            return LZ4F_compressFrameBound(inputBytes, &prefs)
        case .snappy:
            return SnappyCodec.maxCompressedBytes(inputBytes)
        case .zstd:
            return ZstdCodec.maxCompressedBytes(inputBytes)
        }
    }

    /// Appends the decompressed form of `input` to `output`, refusing to produce more than `maxBytes`.
    public static func decompress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, maxBytes: Int, into output: inout ByteBuffer
    ) throws {
        switch codec {
        case .none:
            guard input.count <= maxBytes else {
                throw RecordsError(.decompressedTooLarge, "records are \(input.count) bytes, over the limit of \(maxBytes)")
            }
            output.writeBytes(input)
        case .gzip:
            try gzipDecompress(input, maxBytes: maxBytes, into: &output)
        case .lz4:
            try lz4Decompress(input, maxBytes: maxBytes, into: &output)
        case .snappy:
            try SnappyCodec.decompress(input, maxBytes: maxBytes, into: &output)
        case .zstd:
            try ZstdCodec.decompress(input, maxBytes: maxBytes, into: &output)
        }
    }

    // MARK: gzip (zlib)

    private static func gzipCompress(_ input: UnsafeRawBufferPointer, level: Int32, into output: inout ByteBuffer) throws {
        var stream = z_stream()
        var rc = deflateInit2_(&stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw RecordsError(.compressionFailed, "deflateInit2 failed with \(rc)") }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            rc = deflate(&stream, Z_FINISH)
            guard rc == Z_STREAM_END else { throw RecordsError(.compressionFailed, "deflate failed with \(rc)") }
            return out.count - Int(stream.avail_out)
        }
    }

    private static func gzipDecompress(_ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer) throws {
        var stream = z_stream()
        // 15 + 32: accept a gzip or a zlib header.
        var rc = inflateInit2_(&stream, 47, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw RecordsError(.compressionFailed, "inflateInit2 failed with \(rc)") }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var chunk = max(4096, min(maxBytes + 1, input.count * 4))
        while true {
            // Ask for one byte more than the limit allows, so that an over-limit stream is detected.
            let room = min(chunk, maxBytes + 1 - Int(stream.total_out))
            var wrote = 0
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(room)
                rc = inflate(&stream, Z_NO_FLUSH)
                wrote = room - Int(stream.avail_out)
                return wrote
            }
            if Int(stream.total_out) > maxBytes {
                throw RecordsError(.decompressedTooLarge, "gzip records inflate past the limit of \(maxBytes) bytes")
            }
            if rc == Z_STREAM_END { break }
            if rc == Z_BUF_ERROR && wrote == 0 {
                throw RecordsError(.corruptCompressedData, "gzip data ends before the end of its stream")
            }
            guard rc == Z_OK || rc == Z_BUF_ERROR else {
                throw RecordsError(.corruptCompressedData, "gzip data is corrupt (zlib error \(rc))")
            }
            chunk = min(chunk * 2, 16 << 20)
        }
        guard stream.avail_in == 0 else {
            throw RecordsError(.corruptCompressedData, "\(stream.avail_in) trailing bytes after the gzip stream")
        }
    }

    // MARK: LZ4 frame

    private static func lz4Compress(_ input: UnsafeRawBufferPointer, level: Int32, into output: inout ByteBuffer) throws {
        var prefs = lz4Preferences(level: level)
        let bound = LZ4F_compressFrameBound(input.count, &prefs)
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            let n = LZ4F_compressFrame(out.baseAddress, out.count, input.baseAddress, input.count, &prefs)
            guard LZ4F_isError(n) == 0 else {
                throw RecordsError(.compressionFailed, "LZ4F_compressFrame: \(String(cString: LZ4F_getErrorName(n)))")
            }
            return n
        }
    }

    /// Kafka's LZ4 framing: independent 64 KiB blocks.
    private static func lz4Preferences(level: Int32) -> LZ4F_preferences_t {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.blockMode = LZ4F_blockIndependent
        prefs.compressionLevel = level
        return prefs
    }

    private static func lz4Decompress(_ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer) throws {
        var dctx: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&dctx, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let dctx else {
            throw RecordsError(.compressionFailed, "LZ4F_createDecompressionContext failed")
        }
        defer { LZ4F_freeDecompressionContext(dctx) }
        var consumed = 0
        var produced = 0
        var hint = 1
        var chunk = max(64 << 10, min(maxBytes + 1, input.count * 4))
        while true {
            // One byte more than the limit allows, so that an over-limit frame is detected.
            let room = min(chunk, maxBytes + 1 - produced)
            var progressed = false
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
                var dstSize = room
                var srcSize = input.count - consumed
                hint = LZ4F_decompress(dctx, out.baseAddress, &dstSize, input.baseAddress! + consumed, &srcSize, nil)
                guard LZ4F_isError(hint) == 0 else {
                    throw RecordsError(.corruptCompressedData, "lz4 data is corrupt: \(String(cString: LZ4F_getErrorName(hint)))")
                }
                consumed += srcSize
                produced += dstSize
                progressed = srcSize > 0 || dstSize > 0
                return dstSize
            }
            if produced > maxBytes {
                throw RecordsError(.decompressedTooLarge, "lz4 records inflate past the limit of \(maxBytes) bytes")
            }
            if hint == 0 { break }
            guard progressed else {
                throw RecordsError(.corruptCompressedData, "lz4 frame ends before its end mark")
            }
            chunk = min(chunk * 2, 16 << 20)
        }
        guard consumed == input.count else {
            throw RecordsError(.corruptCompressedData, "\(input.count - consumed) trailing bytes after the lz4 frame")
        }
    }
}

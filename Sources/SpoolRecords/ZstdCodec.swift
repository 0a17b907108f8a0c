import CZstd
import NIOCore

/// Kafka's zstd (codec 4): the zstd *frame* format, through libzstd.
///
/// Writers differ in what the frame says: librdkafka and kafka-python (and Spool) write one
/// frame that states its content size; Kafka's Java client (zstd-jni's `ZstdOutputStream`)
/// writes a streamed frame without it. Both are read: a single frame with a known content
/// size is decoded in one call straight into the output (its size checked against the
/// limit first); anything else (unknown size, several frames laid end to end, skippable
/// frames) is decoded as a stream in bounded steps, so an over-limit frame is caught after
/// at most one step past the limit.
///
/// Compression and decompression contexts are kept per thread (creating one costs a few
/// hundred KiB of tables per call); one that grew past `contextRetainedBytesMax` is freed
/// after use.
enum ZstdCodec {
    /// Kafka's default zstd level (zstd's own default).
    static let defaultLevel: Int32 = 3
    /// A cached context larger than this is freed after use rather than kept.
    static let contextRetainedBytesMax = 16 << 20
    /// Largest window a streamed frame may ask for, as a power of two: the zstd limit
    /// (128 MiB) at most, and never below 8 MiB (levels up to 19 use at most 8 MiB windows),
    /// otherwise the next power of two above the decompression limit.
    static func windowLogMax(forMaxBytes maxBytes: Int) -> Int32 {
        var log: Int32 = 23
        while log < 27 && (1 << Int(log)) < maxBytes { log += 1 }
        return log
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int32?, into output: inout ByteBuffer) throws {
        let contexts = ZstdContexts.current
        let cctx = try contexts.compressionContext()
        defer { contexts.trimCompressionContext() }
        let bound = maxCompressedBytes(input.count)
        let level = min(max(level ?? defaultLevel, ZSTD_minCLevel()), ZSTD_maxCLevel())
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            let n = ZSTD_compressCCtx(cctx, out.baseAddress, bound, input.baseAddress, input.count, level)
            guard ZSTD_isError(n) == 0 else {
                throw RecordsError(.compressionFailed, "ZSTD_compressCCtx: \(String(cString: ZSTD_getErrorName(n)))")
            }
            return n
        }
    }

    static func maxCompressedBytes(_ inputBytes: Int) -> Int {
        ZSTD_compressBound(inputBytes)
    }

    static func decompress(_ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer) throws {
        guard let base = input.baseAddress, input.count > 0 else {
            throw RecordsError(.corruptCompressedData, "empty zstd data")
        }
        let contexts = ZstdContexts.current
        let dctx = try contexts.decompressionContext()
        defer { contexts.trimDecompressionContext() }
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)

        let contentSize = ZSTD_getFrameContentSize(base, input.count)
        let contentSizeUnknown = UInt64.max, contentSizeError = UInt64.max - 1
        guard contentSize != contentSizeError else {
            throw RecordsError(.corruptCompressedData, "zstd data does not start with a frame header")
        }
        if contentSize != contentSizeUnknown, contentSize > UInt64(maxBytes) {
            throw RecordsError(.decompressedTooLarge, "zstd frame states \(contentSize) bytes, over the limit of \(maxBytes)")
        }
        if contentSize != contentSizeUnknown, contentSize > 0, ZSTD_findFrameCompressedSize(base, input.count) == input.count {
            let size = Int(contentSize)
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                let n = ZSTD_decompressDCtx(dctx, out.baseAddress, size, base, input.count)
                guard ZSTD_isError(n) == 0, n == size else {
                    let reason = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "\(n) bytes, not the \(size) its header states"
                    throw RecordsError(.corruptCompressedData, "zstd data is corrupt: \(reason)")
                }
                return n
            }
            return
        }
        try decompressStream(dctx, input, maxBytes: maxBytes, into: &output)
    }

    private static func decompressStream(
        _ dctx: OpaquePointer, _ input: UnsafeRawBufferPointer, maxBytes: Int, into output: inout ByteBuffer
    ) throws {
        ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, windowLogMax(forMaxBytes: maxBytes))
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var produced = 0
        var hint = 1
        var chunk = max(64 << 10, min(maxBytes + 1, input.count * 4))
        while true {
            // One byte more than the limit allows, so that an over-limit stream is detected.
            let room = min(chunk, maxBytes + 1 - produced)
            let consumedBefore = source.pos
            var wrote = 0
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
                var sink = ZSTD_outBuffer(dst: out.baseAddress, size: room, pos: 0)
                hint = ZSTD_decompressStream(dctx, &sink, &source)
                guard ZSTD_isError(hint) == 0 else {
                    throw RecordsError(.corruptCompressedData, "zstd data is corrupt: \(String(cString: ZSTD_getErrorName(hint)))")
                }
                wrote = sink.pos
                return wrote
            }
            produced += wrote
            if produced > maxBytes {
                throw RecordsError(.decompressedTooLarge, "zstd records inflate past the limit of \(maxBytes) bytes")
            }
            // 0: a frame is complete and flushed; with no input left, that is the end.
            if hint == 0 && source.pos == source.size { return }
            guard wrote > 0 || source.pos > consumedBefore else {
                throw RecordsError(.corruptCompressedData, "zstd data ends before the end of its frame")
            }
            chunk = min(chunk * 2, 16 << 20)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SpoolRecords

extension PartitionLog {
    /// Bytes read per `pread` while walking batch headers.
    static let headerScanChunkBytes = 32 << 10

    /// Calls `body` with the header of every batch in the newest segments of the log,
    /// oldest first: whole segments, from the newest back, as long as they fit in
    /// `tailBytesMax` together (the newest non-empty one always). Reads headers only,
    /// never records; what idempotent-producer state is rebuilt from after a restart.
    ///
    /// Batches appended while the walk runs may or may not be seen.
    public func forEachBatchHeader(tailBytesMax: Int64, _ body: (RecordBatchHeader) throws -> Void) throws {
        // One span per segment: from its first batch to its end.
        var spans: [FileSpan] = []
        var offset = startOffset
        let end = endOffset
        while offset < end {
            let result: LogReadResult
            do {
                result = try read(from: offset, maxBytes: 1 << 50)
            } catch let error as StorageError where error.code == .offsetOutOfRange && offset < startOffset {
                // Retention deleted the segment meanwhile: go on from the new start.
                offset = startOffset
                continue
            }
            guard let span = result.span else { break }
            spans.append(span)
            offset = span.nextOffset
        }
        var first = spans.count
        var total: Int64 = 0
        while first > 0 && (first == spans.count || total + Int64(spans[first - 1].length) <= tailBytesMax) {
            total += Int64(spans[first - 1].length)
            first -= 1
        }
        for span in spans[first...] {
            try forEachHeader(in: span, body)
        }
    }

    func forEachHeader(in span: FileSpan, _ body: (RecordBatchHeader) throws -> Void) throws {
        let fd = try openDescriptor(for: span)
        defer { Glibc.close(fd) }
        let spanEnd = span.position + Int64(span.length)
        var chunk = ByteBuffer()
        var chunkStart: Int64 = 0
        var position = span.position
        while position < spanEnd {
            let inChunk = position - chunkStart
            if inChunk < 0 || inChunk + Int64(RecordBatchHeader.size) > Int64(chunk.writerIndex) {
                // Refill from here: enough for at least one header, usually many.
                let want = Int(min(Int64(Self.headerScanChunkBytes), spanEnd - position))
                guard want >= RecordBatchHeader.size else { throw torn(span, at: position) }
                chunk.clear()
                let n = try chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                    try files.io.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]), at: position)
                }
                guard n >= RecordBatchHeader.size else { throw torn(span, at: position) }
                chunkStart = position
            }
            guard let header = RecordBatchHeader(buffer: chunk, at: Int(position - chunkStart)),
                  header.batchLength >= RecordBatchHeader.minBatchLength,
                  position + Int64(header.totalBytes) <= spanEnd else { throw torn(span, at: position) }
            try body(header)
            position += Int64(header.totalBytes)
        }
    }

    private func torn(_ span: FileSpan, at position: Int64) -> StorageError {
        StorageError(.corrupt, "\(span.path): no whole batch header at position \(position) of a span ending at \(span.position + Int64(span.length))")
    }
}

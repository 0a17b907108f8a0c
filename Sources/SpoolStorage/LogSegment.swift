#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SpoolRecords
import Synchronization

/// A span of a segment file: what a fetch sends with `sendfile`.
public struct FileSpan: Hashable, Sendable {
    public var path: String
    public var position: Int64
    public var length: Int
    /// Offset of the first batch in the span.
    public var firstOffset: Int64
    /// Offset just after the last batch in the span: where the next read starts.
    public var nextOffset: Int64
    /// Which incarnation of the file at `path` the span is of: a cleaned segment replaces
    /// its original under the same name, and a span of the original must not be read from it.
    public var generation: UInt64 = 0
}

/// Numbers segment incarnations (see `FileSpan.generation`).
let segmentGenerations = Atomic<UInt64>(1)

/// One segment: a `.log` file of whole batches starting at `baseOffset`, with its
/// sparse `.index` and `.timeindex`, and its aborted-transactions index `.txnindex`.
///
/// A segment does file mechanics only — append, locate, scan, recover, write
/// its indexes; policy (when to roll, what to delete) is the partition log's.
/// Not thread-safe: the owning `PartitionLog` serialises access.
final class LogSegment: @unchecked Sendable {  // guarded by the owning PartitionLog's lock
    static let headerPrefixBytes = RecordBatchHeader.Position.baseTimestamp // through lastOffsetDelta

    let baseOffset: Int64
    let logPath: String
    let indexPath: String
    let timeIndexPath: String
    let txnIndexPath: String
    let files: FileDescriptorCache
    let indexIntervalBytes: Int
    /// This incarnation of the file (a cleaned segment gets a new one under the same name).
    let generation = segmentGenerations.add(1, ordering: .relaxed).oldValue
    /// The base offset of the following segment, for a closed segment the log cleaner
    /// wrote (it has a `.compacted` marker): its batches may leave gaps in offsets, and the
    /// segment ends there, not at its last batch. nil for every other segment, whose
    /// offsets run contiguously (a gap there is damage, or data a power loss dropped).
    private let closedEnd: Int64?
    /// The log cleaner wrote this segment (its `.compacted` marker exists).
    let isCompacted: Bool
    var markerPath: String { Directory.parentOf(logPath) + "/" + Self.fileName(baseOffset, "compacted") }

    private(set) var sizeBytes: Int64
    /// Bytes cut off by recovery when this segment was opened (for observers).
    private(set) var recoveryTruncatedBytes: Int64 = 0
    /// Bytes recovery re-validated when this segment was opened (for observers).
    private(set) var recoveryScannedBytes: Int64 = 0
    private(set) var nextOffset: Int64
    /// Largest batch max-timestamp in the segment, -1 when empty.
    private(set) var maxTimestamp: Int64
    /// Base offset of the batch that carried `maxTimestamp`.
    private var offsetOfMaxTimestamp: Int64 = 0
    /// Wall-clock milliseconds when this process created or opened the segment: the age
    /// for `segment.ms` of a segment whose first batch carries no timestamp.
    let createdAtMillis: Int64
    /// The first batch's max timestamp (-1 when empty or unknown): what `segment.ms` counts
    /// from, as Kafka's `rollingBasedTimestamp`, so that a segment's age survives a restart.
    private(set) var rollingBaseTimestamp: Int64 = -1
    private var offsetIndex: OffsetIndex
    private var timeIndex: TimeIndex
    private var bytesSinceIndexEntry = 0
    /// The ABORT markers of this segment (`.txnindex`, see ``TransactionIndex``).
    private(set) var txnIndex = TransactionIndex()
    /// The `.txnindex` file exists (it is written with the other index files, or at the
    /// first ABORT marker, whichever comes first).
    private var txnIndexFileExists = false
    /// The in-memory entries differ from the file: rewritten whole by ``writeIndexes()``.
    private(set) var txnIndexDirty = false
    /// The `.txnindex` was written since its last fsync.
    var txnIndexNeedsSync = false
    /// The file was missing, unreadable or untrustworthy (recovery re-checked control
    /// batches) where the segment may hold ABORT markers: the partition log rebuilds the
    /// entries from its batches (``replaceTxnIndex(_:)``).
    private(set) var txnIndexNeedsRebuild = false
    /// A control batch (transaction marker) was seen while opening or appending.
    private var sawControlBatch = false
    /// Indexes in memory differ from their files.
    private(set) var indexesDirty = false
    /// The index files were written since their last fsync.
    var indexesNeedSync = false
    /// Set (under the partition lock) when the segment's files are deleted; read by
    /// fsyncs that run outside that lock, so that a late one knows its file is gone.
    private let deletedFlag = Atomic<Bool>(false)
    var isDeleted: Bool { deletedFlag.load(ordering: .acquiring) }

    static func fileName(_ baseOffset: Int64, _ ext: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "." + ext
    }

    /// A new, empty segment.
    init(create directory: String, baseOffset: Int64, files: FileDescriptorCache, indexIntervalBytes: Int, nowMillis: Int64) throws {
        self.baseOffset = baseOffset
        self.logPath = directory + "/" + Self.fileName(baseOffset, "log")
        self.indexPath = directory + "/" + Self.fileName(baseOffset, "index")
        self.timeIndexPath = directory + "/" + Self.fileName(baseOffset, "timeindex")
        self.txnIndexPath = directory + "/" + Self.fileName(baseOffset, TransactionIndex.fileExtension)
        self.files = files
        self.indexIntervalBytes = indexIntervalBytes
        self.sizeBytes = 0
        self.nextOffset = baseOffset
        self.maxTimestamp = -1
        self.createdAtMillis = nowMillis
        self.offsetIndex = OffsetIndex(baseOffset: baseOffset)
        self.timeIndex = TimeIndex(baseOffset: baseOffset)
        self.closedEnd = nil
        self.isCompacted = false
        try files.withDescriptor(logPath, create: true) { fd in try files.io.truncate(fd, to: 0) }
        indexesDirty = true
    }

    /// Opens an existing segment. With `recover`, every batch is re-validated
    /// (length, magic, CRC) and the file is truncated at the first bad one; the
    /// indexes are rebuilt. Otherwise the indexes are loaded and trusted if they
    /// are consistent with the log, and only the tail after the last index entry
    /// is walked to find the next offset.
    /// `knownNextOffset` is the base offset of the following segment, when there is one.
    init(open directory: String, baseOffset: Int64, files: FileDescriptorCache, indexIntervalBytes: Int,
         recover: Bool, knownNextOffset: Int64?, nowMillis: Int64, compacted: Bool = false) throws {
        self.baseOffset = baseOffset
        self.logPath = directory + "/" + Self.fileName(baseOffset, "log")
        self.indexPath = directory + "/" + Self.fileName(baseOffset, "index")
        self.timeIndexPath = directory + "/" + Self.fileName(baseOffset, "timeindex")
        self.txnIndexPath = directory + "/" + Self.fileName(baseOffset, TransactionIndex.fileExtension)
        self.files = files
        self.indexIntervalBytes = indexIntervalBytes
        self.createdAtMillis = nowMillis
        self.offsetIndex = OffsetIndex(baseOffset: baseOffset)
        self.timeIndex = TimeIndex(baseOffset: baseOffset)
        self.nextOffset = baseOffset
        self.maxTimestamp = -1
        self.closedEnd = compacted ? knownNextOffset : nil
        self.isCompacted = compacted
        let fileSize = try files.withDescriptor(logPath) { try files.io.size($0) }
        self.sizeBytes = fileSize
        defer { if sizeBytes > 0, let first = try? readHeader(at: 0) { rollingBaseTimestamp = first.maxTimestamp } }
        let txnBytes = try Directory.readFile(txnIndexPath, io: files.io)
        let txnLoaded = txnBytes.flatMap(TransactionIndex.decode)
        let indexFileExists = Directory.fileExists(indexPath, io: files.io)
        txnIndexFileExists = txnBytes != nil
        if let txnLoaded { txnIndex = txnLoaded }
        // A torn tail entry is dropped (the file is rewritten at the next index write).
        if let txnBytes, let txnLoaded, Int64(txnBytes.count) != txnLoaded.fileBytes { txnIndexDirty = true }
        defer { settleTxnIndex(loaded: txnLoaded != nil, unreadable: txnBytes != nil && txnLoaded == nil, recovered: recover,
                               indexFileExisted: indexFileExists) }
        if recover {
            recoveryScannedBytes = fileSize
            recoveryTruncatedBytes = try self.recover()
            return
        }
        let io = files.io
        if let bytes = try Directory.readFile(indexPath, io: io),
           let index = OffsetIndex.decode(bytes, baseOffset: baseOffset, logBytes: Int(fileSize)) {
            offsetIndex = index
        } else {
            // Missing or inconsistent index: rebuild it from the log (headers only).
            try rebuildIndexes(validateCRC: false)
            return
        }
        // Walk the headers after the last index entry to find the end.
        let start = offsetIndex.last ?? (baseOffset, 0)
        var position = Int64(start.position)
        nextOffset = start.offset
        var walkedMaxTimestamp: Int64 = -1
        var walkedOffsetOfMax = baseOffset
        bytesSinceIndexEntry = 0
        while position < fileSize {
            // Offsets run contiguously through a segment: a batch that does not start where
            // the previous one ended (a flipped bit in a base offset) is damage.
            guard let header = try readHeader(at: position), header.totalBytes <= fileSize - position,
                  header.batchLength >= RecordBatchHeader.minBatchLength,
                  follows(header), header.lastOffsetDelta >= 0 else {
                try rebuildIndexes(validateCRC: false)
                return
            }
            nextOffset = header.nextOffset
            if header.isControl { sawControlBatch = true }
            if header.maxTimestamp > walkedMaxTimestamp {
                walkedMaxTimestamp = header.maxTimestamp
                walkedOffsetOfMax = header.baseOffset
            }
            bytesSinceIndexEntry += header.totalBytes
            position += Int64(header.totalBytes)
        }
        if let knownNextOffset, nextOffset < knownNextOffset { nextOffset = knownNextOffset }
        if let bytes = try Directory.readFile(timeIndexPath, io: io),
           let index = TimeIndex.decode(bytes, baseOffset: baseOffset, nextOffset: max(nextOffset, baseOffset + 1)) {
            timeIndex = index
        }
        if walkedMaxTimestamp > (timeIndex.maxTimestamp ?? -1) {
            maxTimestamp = walkedMaxTimestamp
            offsetOfMaxTimestamp = walkedOffsetOfMax
        } else if let last = timeIndex.maxTimestamp {
            maxTimestamp = last
            offsetOfMaxTimestamp = timeIndex.lastOffset ?? baseOffset
        }
        if maxTimestamp < 0, sizeBytes > 0 {
            try rebuildIndexes(validateCRC: false)
        }
    }

    var isEmpty: Bool { sizeBytes == 0 }

    /// Reads the first 27 bytes of a batch header at `position` (enough for offsets and length),
    /// or the whole header with `full`.
    func readHeader(at position: Int64) throws -> RecordBatchHeader? {
        var buffer = ByteBuffer()
        let n = try files.withDescriptor(logPath) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: RecordBatchHeader.size) { raw in
                try files.io.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<RecordBatchHeader.size]), at: position)
            }
        }
        guard n == RecordBatchHeader.size else { return nil }
        return RecordBatchHeader(buffer: buffer, at: 0)
    }

    /// Appends validated batches (already carrying their final offsets) at the end of the file.
    func append(_ bytes: ByteBuffer, batches: [(index: Int, header: RecordBatchHeader)]) throws {
        precondition(!batches.isEmpty)
        assert(batches.first!.header.baseOffset >= nextOffset, "appended offsets must increase")
        assert(batches.first!.header.baseOffset == nextOffset, "offsets must run contiguously through a segment")
        let position = sizeBytes
        try files.withDescriptor(logPath) { fd in
            do {
                try bytes.withUnsafeReadableBytes { try files.io.pwrite(fd, $0, at: position) }
            } catch let error as StorageError {
                throw DataStateUnknown(cause: error)
            }
        }
        if sizeBytes == 0 { rollingBaseTimestamp = batches.first!.header.maxTimestamp }
        // Index entries point at batch starts; one per index interval of log bytes.
        for (index, header) in batches {
            note(header, at: position + Int64(index - bytes.readerIndex))
        }
        sizeBytes += Int64(bytes.readableBytes)
        indexesDirty = true
    }

    /// Where the batch holding `offset` starts, and the span of whole batches from
    /// there filling at most `maxBytes` (always at least one batch). nil when the
    /// offset is past the segment's end.
    func locate(offset: Int64, maxBytes: Int, maxPosition: Int64? = nil) throws -> FileSpan? {
        let end = min(maxPosition ?? sizeBytes, sizeBytes)
        guard offset < nextOffset else { return nil }
        let start = offsetIndex.floor(offset: offset)
        var position = Int64(start.position)
        var first: RecordBatchHeader?
        while position < end {
            guard let header = try readHeader(at: position) else { break }
            if header.lastOffset >= offset {
                first = header
                break
            }
            position += Int64(header.totalBytes)
        }
        guard let first else { return nil }
        var stop = position + Int64(first.totalBytes)
        var next = first.nextOffset
        let limit = position + Int64(maxBytes)
        if limit >= end {
            if end > stop {
                stop = end
                next = end == sizeBytes ? nextOffset : (try readHeader(at: end)?.baseOffset ?? nextOffset)
            }
        } else if stop < limit {
            // Jump to the last indexed batch start within the limit, then walk a few headers.
            let jump = offsetIndex.floor(position: Int(limit))
            if Int64(jump.position) > stop {
                stop = Int64(jump.position)
                next = jump.offset
            }
            while stop < end, let header = try readHeader(at: stop), stop + Int64(header.totalBytes) <= limit {
                stop += Int64(header.totalBytes)
                next = header.nextOffset
            }
        }
        assert(stop > position && stop <= end)
        // A span to the segment's end reads on from the segment's end (a cleaned segment may
        // end in a hole after its last batch).
        if stop == sizeBytes { next = nextOffset }
        return FileSpan(path: logPath, position: position, length: Int(stop - position), firstOffset: first.baseOffset, nextOffset: next,
                        generation: generation)
    }

    /// The first record whose timestamp is ≥ `timestamp` (its offset and timestamp): the
    /// time index gives where to start, then batches are walked to the first whose max
    /// timestamp is at or after it, and that one batch is decoded.
    /// Records below `from` (deleted by DeleteRecords) are passed over.
    func offset(forTimestamp timestamp: Int64, from: Int64 = 0) throws -> TimestampedOffset? {
        guard maxTimestamp >= timestamp else { return nil }
        let startOffset = max(timeIndex.searchStart(forTimestamp: timestamp), from)
        var position = Int64(offsetIndex.floor(offset: startOffset).position)
        while position < sizeBytes {
            guard let header = try readHeader(at: position) else { return nil }
            if header.maxTimestamp >= timestamp && header.lastOffset >= from {
                let bytes = try readBytes(position: position, length: header.totalBytes)
                var reader = RecordBatchReader(bytes)
                if let batch = try reader.next() {
                    for record in try batch.records() where record.timestamp >= timestamp && record.offset >= from {
                        return TimestampedOffset(offset: record.offset, timestamp: record.timestamp)
                    }
                }
                if header.baseOffset >= from { return TimestampedOffset(offset: header.baseOffset, timestamp: header.maxTimestamp) }
            }
            position += Int64(header.totalBytes)
        }
        return nil
    }

    /// The first record carrying the segment's largest timestamp, or nil when the segment is
    /// empty or has no timestamps.
    func maxTimestampRecord() throws -> TimestampedOffset? {
        guard maxTimestamp >= 0, sizeBytes > 0 else { return nil }
        var position = Int64(offsetIndex.floor(offset: offsetOfMaxTimestamp).position)
        while position < sizeBytes {
            guard let header = try readHeader(at: position) else { return nil }
            if header.maxTimestamp == maxTimestamp {
                let bytes = try readBytes(position: position, length: header.totalBytes)
                var reader = RecordBatchReader(bytes)
                if let batch = try reader.next() {
                    for record in try batch.records() where record.timestamp == maxTimestamp {
                        return TimestampedOffset(offset: record.offset, timestamp: record.timestamp)
                    }
                }
                return TimestampedOffset(offset: header.lastOffset, timestamp: header.maxTimestamp)
            }
            position += Int64(header.totalBytes)
        }
        return nil
    }

    /// The first record with the largest timestamp among those at or after offset `from`
    /// (a walk of every batch header from there, then one batch decoded).
    func maxTimestampRecord(from: Int64) throws -> TimestampedOffset? {
        var position = Int64(offsetIndex.floor(offset: from).position)
        var best: TimestampedOffset?
        while position < sizeBytes {
            guard let header = try readHeader(at: position) else { break }
            if header.lastOffset >= from && header.maxTimestamp > (best?.timestamp ?? -1) {
                // Decode the batch: its max may be a record below `from`, and the exact record is wanted.
                let bytes = try readBytes(position: position, length: header.totalBytes)
                var reader = RecordBatchReader(bytes)
                if let batch = try reader.next() {
                    for record in try batch.records() where record.offset >= from && record.timestamp > (best?.timestamp ?? -1) {
                        best = TimestampedOffset(offset: record.offset, timestamp: record.timestamp)
                    }
                }
            }
            position += Int64(header.totalBytes)
        }
        return best
    }

    /// Calls `body` with every batch header and its position, in file order (one `pread`
    /// per header: for rare walks, such as a `.txnindex` rebuild).
    func forEachBatchHeader(_ body: (RecordBatchHeader, Int64) throws -> Void) throws {
        var position: Int64 = 0
        while position < sizeBytes {
            guard let header = try readHeader(at: position), header.batchLength >= RecordBatchHeader.minBatchLength,
                  position + Int64(header.totalBytes) <= sizeBytes else {
                throw StorageError(.corrupt, "\(logPath): no whole batch at position \(position)")
            }
            try body(header, position)
            position += Int64(header.totalBytes)
        }
    }

    func readBytes(position: Int64, length: Int) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        let n = try files.withDescriptor(logPath) { fd in
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try files.io.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), at: position)
            }
        }
        guard n == length else { throw StorageError(.corrupt, "short read of \(logPath) at \(position): \(n) of \(length) bytes") }
        return buffer
    }

    /// Scans the whole log from the start, checking every batch (with `validateCRC`),
    /// truncating at the first bad or torn batch, and rebuilding both indexes.
    /// Returns the number of bytes truncated.
    @discardableResult
    func recover() throws -> Int64 {
        try rebuildIndexes(validateCRC: true)
    }

    @discardableResult
    private func rebuildIndexes(validateCRC: Bool) throws -> Int64 {
        offsetIndex = OffsetIndex(baseOffset: baseOffset)
        timeIndex = TimeIndex(baseOffset: baseOffset)
        bytesSinceIndexEntry = 0
        nextOffset = baseOffset
        maxTimestamp = -1
        offsetOfMaxTimestamp = baseOffset
        let fileSize = try files.withDescriptor(logPath) { try files.io.size($0) }
        let chunkBytes = 1 << 20
        var position: Int64 = 0
        var valid: Int64 = 0
        scan: while position < fileSize {
            let want = Int(min(Int64(chunkBytes), fileSize - position))
            var chunk = try readBytes(position: position, length: want)
            var consumed = 0
            while chunk.readableBytes > 0 {
                let index = chunk.readerIndex
                guard let header = RecordBatchHeader(buffer: chunk, at: index) else { break }
                let available = chunk.readableBytes
                guard header.magic == RecordBatchHeader.currentMagic,
                      header.batchLength >= RecordBatchHeader.minBatchLength,
                      follows(header), header.lastOffsetDelta >= 0,
                      position + Int64(consumed) + Int64(header.totalBytes) <= fileSize else { break scan }
                if header.totalBytes > available {
                    if consumed == 0 {
                        // A batch larger than the chunk: read it alone.
                        chunk = try readBytes(position: position, length: header.totalBytes)
                        continue
                    }
                    break
                }
                if validateCRC {
                    let crc = RecordBatch.computeCRC(of: chunk, at: index, totalBytes: header.totalBytes)
                    guard crc == header.crc else { break scan }
                }
                note(header, at: position + Int64(consumed))
                chunk.moveReaderIndex(forwardBy: header.totalBytes)
                consumed += header.totalBytes
                valid = position + Int64(consumed)
            }
            if consumed == 0 { break }
            position += Int64(consumed)
        }
        let truncated = fileSize - valid
        if truncated > 0 {
            try files.withDescriptor(logPath) { fd in
                do { try files.io.truncate(fd, to: valid) } catch let error as StorageError { throw DataStateUnknown(cause: error) }
            }
        }
        sizeBytes = valid
        indexesDirty = true
        // A cleaned segment's last batches may have gone: whole, it still ends where the next begins.
        if truncated == 0, let closedEnd, nextOffset < closedEnd { nextOffset = closedEnd }
        return truncated
    }

    /// Whether a batch may come next: offsets run contiguously through a segment that was
    /// never cleaned (a batch not starting where the previous one ended is damage, e.g. a
    /// flipped bit in a base offset); a closed segment may have holes, within its range.
    private func follows(_ header: RecordBatchHeader) -> Bool {
        if header.baseOffset == nextOffset { return true }
        guard let closedEnd else { return false }
        return header.baseOffset > nextOffset && header.lastOffset < closedEnd
    }

    /// Records a batch written at `position`: sparse index entries (offset and time
    /// together, once per index interval), next offset, max timestamp.
    private func note(_ header: RecordBatchHeader, at position: Int64) {
        if bytesSinceIndexEntry >= indexIntervalBytes && position > 0 {
            offsetIndex.append(offset: header.baseOffset, position: Int(position))
            if maxTimestamp >= 0 { timeIndex.append(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp) }
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += header.totalBytes
        if header.isControl { sawControlBatch = true }
        if header.maxTimestamp > maxTimestamp {
            maxTimestamp = header.maxTimestamp
            offsetOfMaxTimestamp = header.baseOffset
        }
        nextOffset = header.nextOffset
    }

    /// Writes both index files (whole; they are small) if they changed, creating them
    /// if needed; ``syncIndexes()`` makes them durable. The time index gets a last entry
    /// for the newest timestamp, so that a closed segment's max timestamp is known
    /// without a scan. Called under the partition lock (never on a deleted segment).
    func writeIndexes() throws {
        precondition(!isDeleted, "index write of a deleted segment")
        if txnIndexDirty { try writeTxnIndex() }
        guard indexesDirty else { return }
        // A small segment with no index entries needs no index files: opening it walks
        // its few batches instead (cheap), and thousands of small partitions save
        // thousands of file creations.
        if offsetIndex.isEmpty && sizeBytes <= Int64(indexIntervalBytes)
            && !Directory.fileExists(indexPath, io: files.io) && !Directory.fileExists(timeIndexPath, io: files.io) {
            indexesDirty = false
            return
        }
        if maxTimestamp >= 0 { timeIndex.append(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp) }
        // A torn write leaves a prefix of whole entries (still a valid sparse index) or a
        // partial entry (refused by `decode`, so the index is rebuilt).
        try writeWhole(indexPath, offsetIndex.encoded())
        try writeWhole(timeIndexPath, timeIndex.encoded())
        // With the other indexes, the `.txnindex` always exists: its absence then means it was lost.
        if !txnIndexFileExists { try writeTxnIndex() }
        indexesDirty = false
        indexesNeedSync = true
    }

    private func writeWhole(_ path: String, _ bytes: [UInt8]) throws {
        try files.withDescriptor(path, create: true) { fd in
            try files.io.truncate(fd, to: 0)
            try bytes.withUnsafeBytes { try files.io.pwrite(fd, $0, at: 0) }
        }
    }

    /// Rewrites `.txnindex` if its entries changed since it was written.
    func writeTxnIndexIfDirty() throws {
        if txnIndexDirty { try writeTxnIndex() }
    }

    private func writeTxnIndex() throws {
        try writeWhole(txnIndexPath, txnIndex.encoded())
        txnIndexFileExists = true
        txnIndexDirty = false
        txnIndexNeedsSync = true
    }

    // MARK: Aborted transactions

    /// Appends the entry of an ABORT marker just appended to this segment (one `pwrite`
    /// at the end of `.txnindex`, created if needed); fsynced with the segment
    /// (``syncTxnIndex()``). Returns whether the file was created (the directory then
    /// needs an fsync). The marker is in the log already, so a failed write (a full disk,
    /// no descriptor) fails nothing: the entry is kept in memory and the whole file is
    /// rewritten by the next ``writeIndexes()`` (until then the recovery point stays
    /// before this segment, so a crash rebuilds the file from the batches).
    @discardableResult
    func appendAbortedTransaction(_ entry: AbortedTransaction) -> Bool {
        precondition(!isDeleted, "txnindex append to a deleted segment")
        let created = !txnIndexFileExists
        txnIndex.append(entry)
        if txnIndexDirty {
            try? writeTxnIndex()
            return created && txnIndexFileExists
        }
        let position = txnIndex.fileBytes - Int64(TransactionIndex.entryBytes)
        var bytes = ByteBuffer()
        TransactionIndex.encode(entry, into: &bytes)
        do {
            try files.withDescriptor(txnIndexPath, create: true) { fd in
                try bytes.withUnsafeReadableBytes { try files.io.pwrite(fd, $0, at: position) }
            }
        } catch {
            txnIndexDirty = true
            return false
        }
        txnIndexFileExists = true
        txnIndexNeedsSync = true
        return created
    }

    /// Replaces the entries (a rebuild from the log, or a cleaned segment taking its
    /// originals'); the file is rewritten by the next ``writeIndexes()``.
    func replaceTxnIndex(_ entries: [AbortedTransaction]) {
        txnIndex = TransactionIndex(entries: entries)
        txnIndexDirty = true
        txnIndexNeedsRebuild = false
    }

    /// fsyncs `.txnindex` (outside the partition lock), if it exists.
    func syncTxnIndex() throws {
        guard txnIndexFileExists else { return }
        try syncFile(txnIndexPath)
    }

    /// Decides, once the segment is open, whether its `.txnindex` can be trusted.
    private func settleTxnIndex(loaded: Bool, unreadable: Bool, recovered: Bool, indexFileExisted: Bool) {
        if unreadable {
            txnIndexNeedsRebuild = true
        } else if !loaded {
            // Missing: expected for a small segment without index files and without
            // markers; lost when the other indexes exist or a marker is in the segment.
            txnIndexNeedsRebuild = indexFileExisted || sawControlBatch
        } else if recovered {
            // Recovery re-checked every batch: entries may be missing (fsynced log, lost
            // index page) or name markers cut off.
            if sawControlBatch { txnIndexNeedsRebuild = true } else if !txnIndex.entries.isEmpty { replaceTxnIndex([]) }
        } else if txnIndex.truncate(from: nextOffset) {
            txnIndexDirty = true
        }
    }

    /// fsyncs the index files written by ``writeIndexes()`` (outside the partition lock).
    /// A deleted segment has nothing left to sync.
    func syncIndexes() throws {
        for path in [indexPath, timeIndexPath] {
            try syncFile(path)
        }
    }

    /// fsyncs the log file (outside the partition lock: retention may delete the segment
    /// meanwhile, and then there is nothing left to sync). A failed fsync throws
    /// `DataStateUnknown`; a failed open throws the plain error (nothing was touched).
    func syncLog() throws {
        try syncFile(logPath)
    }

    private func syncFile(_ path: String) throws {
        do {
            try files.withDescriptor(path) { fd in
                do { try files.io.fsync(fd) } catch let error as StorageError { throw DataStateUnknown(cause: error) }
            }
        } catch let error as StorageError where error.errno == ENOENT && isDeleted {
            return
        }
    }

    /// The byte position where the batches from `offset` on begin: the start of the first
    /// batch whose base offset is ≥ `offset` (the file size when there is none). `offset`
    /// is a batch boundary in a replicated log (high watermarks and truncation points are).
    func position(ofBatchesFrom offset: Int64) throws -> Int64 {
        if offset <= baseOffset { return 0 }
        if offset >= nextOffset { return sizeBytes }
        var position = Int64(offsetIndex.floor(offset: offset).position)
        while position < sizeBytes {
            guard let header = try readHeader(at: position) else { break }
            if header.baseOffset >= offset { return position }
            position += Int64(header.totalBytes)
        }
        return sizeBytes
    }

    /// Cuts the segment so it ends before the first batch at or after `offset` (replica
    /// truncation): the file is truncated, the indexes rebuilt from what is left (and
    /// written by the next flush). A failed truncate throws `DataStateUnknown`.
    func truncate(from offset: Int64) throws {
        let keep = try position(ofBatchesFrom: offset)
        guard keep < sizeBytes else { return }
        try files.withDescriptor(logPath) { fd in
            do { try files.io.truncate(fd, to: keep) } catch let error as StorageError { throw DataStateUnknown(cause: error) }
        }
        try rebuildIndexes(validateCRC: false)
        if sizeBytes == 0 { rollingBaseTimestamp = -1 }
        if txnIndex.truncate(from: offset) { txnIndexDirty = true }
    }

    /// Closes and deletes the segment's files (not synced: the caller fsyncs the directory).
    /// Writes nothing, so it works on a full disk.
    func delete(keepingMarker: Bool = false) throws {
        deletedFlag.store(true, ordering: .releasing)
        for path in [logPath, indexPath, timeIndexPath, txnIndexPath] {
            files.forget(path)
            try Directory.removeFile(path, io: files.io)
        }
        if isCompacted && !keepingMarker { try Directory.removeFile(markerPath, io: files.io) }
    }

    /// Closes the segment's descriptors (they reopen on demand).
    func closeFiles() {
        for path in [logPath, indexPath, timeIndexPath, txnIndexPath] { files.forget(path) }
    }

    /// Opens a private duplicate descriptor of the log for a zero-copy send; the caller closes it.
    func duplicateDescriptor() throws -> Int32 {
        try files.withDescriptor(logPath) { fd in try files.io.duplicate(fd) }
    }
}

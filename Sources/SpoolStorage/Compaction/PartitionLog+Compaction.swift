#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SpoolRecords

/// What one clean of a partition did.
public struct CleanResult: Hashable, Sendable {
    /// Bytes of segments read (the key map's pass and the copy's).
    public var bytesRead: Int64 = 0
    /// Bytes of cleaned segments written.
    public var bytesWritten: Int64 = 0
    /// Original segments replaced.
    public var segmentsCleaned = 0
    /// Records removed (superseded, keyless, or tombstones past `delete.retention.ms`).
    public var recordsRemoved: Int64 = 0
    /// Tombstones among them.
    public var tombstonesRemoved: Int64 = 0
    /// Everything below this offset has been cleaned at least once.
    public var cleanedThrough: Int64 = 0
}

/// How dirty a compacted partition is (for the cleaner's choice and for operators).
public struct Cleanability: Hashable, Sendable {
    /// Bytes of closed, durable segments old enough to clean (`min.compaction.lag.ms`).
    public var cleanableBytes: Int64
    /// Of those, bytes never cleaned.
    public var dirtyBytes: Int64
    public var dirtyRatio: Double { cleanableBytes == 0 ? 0 : Double(dirtyBytes) / Double(cleanableBytes) }
    /// A clean would run now (ratio, `max.compaction.lag.ms`, or tombstones to purge).
    public var due: Bool
}

/// Log compaction (`cleanup.policy=compact`): keeps the last record of every key.
///
/// Only closed, durable segments are cleaned (never the active one). The dirty section —
/// segments from the end of the previous clean on — is read once to map every key to its
/// last offset; then every cleanable segment, in groups that fit in `segment.bytes`, is
/// copied without the records a later one of the same key supersedes, without keyless
/// records, and without tombstones first cleaned at least `delete.retention.ms` ago. Batches
/// keep their base offset and last offset (offsets have holes after a clean, never move);
/// a batch that lost records is compressed again with its own codec; one that lost all is
/// dropped. A cleaned group replaces its originals as `SegmentSwap` describes (crash-safe).
extension PartitionLog {
    /// Largest key map of one clean (Kafka's `log.cleaner.dedupe.buffer.size`): past it, the
    /// clean stops at the last whole dirty segment mapped and the next clean goes on.
    public static let cleanerKeyMapBytesMax = 128 << 20
    /// Bytes read per `pread` while copying a segment.
    static let cleanerReadChunkBytes = 1 << 20

    var cleanerCheckpointPath: String { directory + "/" + CleanerCheckpoint.fileName }

    /// The segments a clean may touch now and how dirty they are.
    public func cleanability(now: Int64) -> Cleanability {
        let checkpoint = CleanerCheckpoint.read(directory, io: files.io)
        return state.withLock { s in
            let candidates = Self.cleanable(s, now: now)
            return Self.cleanability(candidates, s.config, checkpoint, now: now)
        }
    }

    /// Closed segments below the durable offset, oldest first, up to the first too young
    /// for `min.compaction.lag.ms`.
    static func cleanable(_ s: State, now: Int64) -> [LogSegment] {
        var result: [LogSegment] = []
        for segment in s.segments.dropLast() {
            guard segment.nextOffset <= s.durableOffset else { break }
            if s.config.minCompactionLagMillis > 0 && segment.maxTimestamp >= 0
                && now - segment.maxTimestamp < s.config.minCompactionLagMillis { break }
            result.append(segment)
        }
        return result
    }

    static func cleanability(_ candidates: [LogSegment], _ config: TopicConfig, _ checkpoint: CleanerCheckpoint, now: Int64) -> Cleanability {
        let firstDirty = checkpoint.cleanedThrough
        let total = candidates.reduce(Int64(0)) { $0 + $1.sizeBytes }
        let dirtySegments = candidates.filter { $0.baseOffset >= firstDirty }
        let dirty = dirtySegments.reduce(Int64(0)) { $0 + $1.sizeBytes }
        var due = false
        if !dirtySegments.isEmpty {
            let ratio = total == 0 ? 0 : Double(dirty) / Double(total)
            let oldest = dirtySegments.first!.rollingBaseTimestamp
            let overdue = config.maxCompactionLagMillis < .max && oldest >= 0 && now - oldest > config.maxCompactionLagMillis
            due = ratio >= config.minCleanableDirtyRatio || overdue
        }
        if !candidates.isEmpty && checkpoint.purgeDue(now: now, retention: config.deleteRetentionMillis) { due = true }
        return Cleanability(cleanableBytes: total, dirtyBytes: dirty, due: due)
    }

    /// Cleans the partition if it is compacted and a clean is due (or `force`); nil when
    /// nothing ran. Runs on the caller's thread (the cleaner's), paced by `throttle`; takes
    /// the partition lock only for short reads and for the swap. Errors leave the log as it
    /// was (a committed swap is finished by the next open).
    @discardableResult
    public func clean(now: Int64, force: Bool = false, throttle: CleanerThrottle? = nil,
                      keyMapBytesMax: Int = PartitionLog.cleanerKeyMapBytesMax) throws -> CleanResult? {
        let io = files.io
        var checkpoint = CleanerCheckpoint.read(directory, io: io)
        let picked = try state.withLock { s -> (config: TopicConfig, segments: [LogSegment], following: [Int64])? in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            guard s.failure == nil, s.config.cleanupPolicy.compact, !s.cleaning else { return nil }
            let candidates = Self.cleanable(s, now: now)
            guard !candidates.isEmpty else { return nil }
            let how = Self.cleanability(candidates, s.config, checkpoint, now: now)
            guard how.due || force else { return nil }
            s.cleaning = true
            // Where each candidate ends: the base offset of the segment after it.
            let following = candidates.map { c in s.segments[s.segments.firstIndex { $0 === c }! + 1].baseOffset }
            return (s.config, candidates, following)
        }
        guard let picked else { return nil }
        defer { state.withLock { $0.cleaning = false } }
        throttle?.reset()
        var result = CleanResult()

        // 1. The key map over the dirty section (whole segments while the map has room).
        let firstDirty = checkpoint.cleanedThrough
        var lastOffsetOf: [[UInt8]: Int64] = [:]
        var mapBytes = 0
        var cleanEndIndex = -1 // last candidate index to clean
        for (i, segment) in picked.segments.enumerated() {
            if segment.baseOffset < firstDirty {
                cleanEndIndex = i
                continue
            }
            if mapBytes >= keyMapBytesMax && cleanEndIndex >= 0 { break }
            try forEachBatch(of: segment, result: &result, throttle: throttle) { batch in
                if batch.header.isControl { return }
                for entry in try CompactedRecords.entries(of: batch).entries {
                    guard let key = entry.key else { continue }
                    if lastOffsetOf.updateValue(entry.offset, forKey: key) == nil { mapBytes += key.count + 48 }
                }
            }
            cleanEndIndex = i
        }
        guard cleanEndIndex >= 0 else { return nil }
        let segments = Array(picked.segments[...cleanEndIndex])
        let cleanEnd = picked.following[cleanEndIndex]
        let horizon = checkpoint.horizon(now: now, retention: picked.config.deleteRetentionMillis)

        // 2. Groups of consecutive segments that fit one segment, each copied and swapped in.
        var group: [LogSegment] = []
        var groupBytes: Int64 = 0
        var groups: [[LogSegment]] = []
        for (i, segment) in segments.enumerated() {
            let end = picked.following[i]
            if let first = group.first,
               groupBytes + segment.sizeBytes > picked.config.segmentBytes || end - first.baseOffset > Int64(UInt32.max) {
                groups.append(group)
                group = []
                groupBytes = 0
            }
            group.append(segment)
            groupBytes += segment.sizeBytes
        }
        if !group.isEmpty { groups.append(group) }
        for group in groups {
            let end = picked.following[segments.firstIndex { $0 === group.last! }!]
            try cleanGroup(group, end: end, config: picked.config, keep: { entry, isControl in
                if isControl { return true }
                guard let key = entry.key else { return false }
                if let last = lastOffsetOf[key], last > entry.offset { return false }
                return !(entry.isTombstone && entry.offset < horizon)
            }, result: &result, throttle: throttle)
        }

        // 3. Remember the clean (tombstones below `horizon` are gone now).
        checkpoint.record(.init(atMillis: now, through: max(cleanEnd, firstDirty)), purgedThrough: horizon,
                          retention: picked.config.deleteRetentionMillis)
        try checkpoint.write(directory, io: io)
        result.cleanedThrough = checkpoint.cleanedThrough
        return result
    }

    /// Copies `group` (consecutive closed segments ending at `end`) into one cleaned segment
    /// and swaps it in.
    private func cleanGroup(_ group: [LogSegment], end: Int64, config: TopicConfig,
                            keep: (CompactedRecords.Entry, Bool) -> Bool, result: inout CleanResult, throttle: CleanerThrottle?) throws {
        let io = files.io
        let base = group.first!.baseOffset
        let cleanedPath = directory + "/" + SegmentSwap.cleanedName(base: base)
        let fd = try io.open(cleanedPath, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        var written: Int64 = 0
        var removed: Int64 = 0
        var tombstones: Int64 = 0
        do {
            var pending = ByteBuffer()
            func drain() throws {
                guard pending.readableBytes > 0 else { return }
                try pending.withUnsafeReadableBytes { try io.pwrite(fd, $0, at: written) }
                written += Int64(pending.readableBytes)
                throttle?.paced(pending.readableBytes)
                pending.clear()
            }
            for segment in group {
                try forEachBatch(of: segment, result: &result, throttle: throttle) { batch in
                    let control = batch.header.isControl
                    let kept = try CompactedRecords.filter(batch) { entry in
                        let yes = keep(entry, control)
                        if !yes {
                            removed += 1
                            if entry.isTombstone { tombstones += 1 }
                        }
                        return yes
                    }
                    if let kept { pending.writeImmutableBuffer(kept) }
                    if pending.readableBytes >= Self.cleanerReadChunkBytes { try drain() }
                }
            }
            try drain()
            try io.fsync(fd)
            io.close(fd)
        } catch {
            io.close(fd)
            try? io.removeFile(cleanedPath)
            throw error
        }
        let marker = directory + "/" + SegmentSwap.markerName(base: base)
        if !Directory.fileExists(marker, io: io) { try SegmentSwap.createEmpty(marker, io: io) }
        // The commit point: from here on the next open installs the cleaned segment.
        let swapPath = directory + "/" + SegmentSwap.swapName(base: base, end: end)
        try io.rename(cleanedPath, to: swapPath)
        try io.syncDirectory(directory)
        try install(group, swapPath: swapPath, end: end)
        try io.syncDirectory(directory)
        result.bytesWritten += written
        result.segmentsCleaned += group.count
        result.recordsRemoved += removed
        result.tombstonesRemoved += tombstones
    }

    /// Step 3 of `SegmentSwap`: the originals' files go, the swap file takes the first one's
    /// name, and the cleaned segment replaces them in memory. If the log changed meanwhile
    /// (an admin `recover()` re-opened it, which installs committed swaps itself), the swap
    /// file is left for the next open.
    private func install(_ group: [LogSegment], swapPath: String, end: Int64) throws {
        try state.withLock { s in
            if s.closed { return }
            guard let first = s.segments.firstIndex(where: { $0 === group.first! }),
                  first + group.count < s.segments.count,
                  zip(s.segments[first...], group).allSatisfy({ $0 === $1 }) else { return }
            do {
                // The cleaned segment takes its originals' aborted transactions.
                let aborted = group.flatMap(\.txnIndex.entries)
                for segment in group {
                    try segment.delete(keepingMarker: segment === group.first!)
                    s.unsyncedSegments.removeAll { $0 === segment }
                }
                let base = group.first!.baseOffset
                try Directory.rename(swapPath, directory + "/" + LogSegment.fileName(base, "log"), io: files.io)
                let cleaned = try LogSegment(open: directory, baseOffset: base, files: files, indexIntervalBytes: s.config.indexIntervalBytes,
                                             recover: false, knownNextOffset: end, nowMillis: clock(), compacted: true)
                cleaned.replaceTxnIndex(aborted)
                try? cleaned.writeIndexes()
                s.segments.replaceSubrange(first..<(first + group.count), with: [cleaned])
                s.unsyncedSegments.append(cleaned)
                s.directoryNeedsSync = true
            } catch {
                // The files are half swapped: only a re-open (which finishes the swap) knows the log now.
                let cause = error as? StorageError ?? StorageError(.io, "\(error)")
                throw stop(&s, .fsync, cause, now: clock())
            }
        }
    }

    /// Calls `body` with every batch of a closed segment, in order, reading it in chunks
    /// (each under the partition lock, so that a concurrent delete is seen).
    private func forEachBatch(of segment: LogSegment, result: inout CleanResult, throttle: CleanerThrottle?,
                              _ body: (RecordBatch) throws -> Void) throws {
        var position: Int64 = 0
        let size = segment.sizeBytes
        while position < size {
            let want = Int(min(Int64(Self.cleanerReadChunkBytes), size - position))
            var chunk = try state.withLock { s -> ByteBuffer in
                if s.closed || segment.isDeleted { throw StorageError(.closed, "segment \(segment.logPath) went away during a clean") }
                guard let header = try segment.readHeader(at: position) else {
                    throw StorageError(.corrupt, "no batch header at \(position) of \(segment.logPath)")
                }
                return try segment.readBytes(position: position, length: max(want, header.totalBytes))
            }
            result.bytesRead += Int64(chunk.readableBytes)
            throttle?.paced(chunk.readableBytes)
            var reader = RecordBatchReader(chunk, allowPartialTail: true)
            var consumed = 0
            while let batch = try reader.next() {
                try body(batch)
                consumed = reader.consumedBytes
            }
            guard consumed > 0 else { throw StorageError(.corrupt, "no whole batch at \(position) of \(segment.logPath)") }
            position += Int64(consumed)
            chunk.clear()
        }
    }
}

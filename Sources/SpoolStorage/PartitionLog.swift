#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOCore
import SpoolRecords
import Synchronization

/// What an append produced.
public struct AppendResult: Hashable, Sendable {
    /// Offset given to the first record.
    public var baseOffset: Int64
    /// Offset of the last record.
    public var lastOffset: Int64
    /// Records appended.
    public var recordCount: Int64
}

/// What a read found: a span of whole batches in one segment file, ready for `sendfile`.
public struct LogReadResult: Sendable {
    /// The batches, or nil when the offset is the log end (nothing to read yet).
    public var span: FileSpan?
    public var logStartOffset: Int64
    public var highWatermark: Int64
}

/// One partition's log: an ordered set of segments in one directory, of which
/// the last is active and takes appends.
///
/// The log holds policy — when to roll, what retention deletes, what recovery
/// scans, when to fsync — and serialises access to its segments with one lock.
/// Appends are `pwrite`s into the page cache; durability is separate: call
/// ``waitUntilDurable(_:)`` (what `acks=all` does) and one fsync serves every
/// append waiting for it (group commit).
public final class PartitionLog: Sendable {
    public let topic: String
    public let partition: Int32
    public let directory: String
    let files: FileDescriptorCache
    let clock: @Sendable () -> Int64
    let observer: any StorageObserver

    struct State {
        var config: TopicConfig
        var segments: [LogSegment]
        /// Segments rolled since their last fsync (the active one is always checked).
        var unsyncedSegments: [LogSegment] = []
        var messagesSinceFlush: Int64 = 0
        var lastFlushMillis: Int64
        /// Everything below this offset is on stable storage.
        var durableOffset: Int64
        /// Set when a write or fsync failed: appends are refused until restart.
        var failure: StorageError?
        var closed = false
    }

    struct Committer {
        var inFlight = false
        var waiters: [(offset: Int64, continuation: CheckedContinuation<Void, Error>)] = []
    }

    private let state: Mutex<State>
    private let committer = Mutex(Committer())
    private let recoveryPointPath: String

    /// Opens (or creates) the partition log in `directory`.
    /// With `cleanShutdown == false`, every segment from the recovery point on is
    /// re-validated and truncated at the first torn or corrupt batch.
    public init(
        directory: String, topic: String, partition: Int32, config: TopicConfig, files: FileDescriptorCache,
        cleanShutdown: Bool, clock: @escaping @Sendable () -> Int64 = wallClockMillis,
        observer: any StorageObserver = NoStorageObserver()
    ) throws {
        let openedNanos = monotonicNanos()
        var scanned: Int64 = 0, truncated: Int64 = 0
        self.observer = observer
        self.topic = topic
        self.partition = partition
        self.directory = directory
        self.files = files
        self.clock = clock
        self.recoveryPointPath = directory + "/recovery-point"
        try Directory.create(directory)
        let now = clock()
        var bases: [Int64] = []
        for name in try Directory.list(directory) {
            if name.hasSuffix(".log"), let base = Int64(name.dropLast(4)) {
                bases.append(base)
            } else if name.hasSuffix(".tmp") || name.hasSuffix(".deleted") {
                try? Directory.removeFile(directory + "/" + name)
            }
        }
        bases.sort()
        // Segments that may hold data not yet fsynced: from the one holding the recovery point on.
        var recoveryPoint: Int64 = 0
        if let bytes = try Directory.readFile(recoveryPointPath), let text = String(validating: bytes, as: UTF8.self),
           let value = Int64(text.filter { !$0.isWhitespace }) {
            recoveryPoint = value
        }
        var segments: [LogSegment] = []
        for (i, base) in bases.enumerated() {
            let following = i + 1 < bases.count ? bases[i + 1] : nil
            let mustRecover = !cleanShutdown && (following == nil || following! > recoveryPoint)
            let segment = try LogSegment(
                open: directory, baseOffset: base, files: files, indexIntervalBytes: config.indexIntervalBytes,
                recover: mustRecover, knownNextOffset: following, nowMillis: now)
            if let last = segments.last, segment.baseOffset < last.nextOffset {
                throw StorageError(.corrupt, "segment \(base) overlaps the previous one in \(directory)")
            }
            segments.append(segment)
            if mustRecover { scanned += segment.sizeBytes + segment.recoveryTruncatedBytes; truncated += segment.recoveryTruncatedBytes }
            // A truncated segment invalidates all after it.
            if mustRecover, let following, segment.nextOffset < following {
                for later in bases[(i + 1)...] {
                    try LogSegment(open: directory, baseOffset: later, files: files, indexIntervalBytes: config.indexIntervalBytes,
                                   recover: false, knownNextOffset: nil, nowMillis: now).delete()
                }
                break
            }
        }
        if segments.isEmpty {
            segments.append(try LogSegment(create: directory, baseOffset: 0, files: files,
                                           indexIntervalBytes: config.indexIntervalBytes, nowMillis: now))
        }
        let end = segments.last!.nextOffset
        state = Mutex(State(config: config, segments: segments, lastFlushMillis: now, durableOffset: cleanShutdown ? end : min(end, recoveryPoint)))
        if !cleanShutdown {
            // What survived recovery is what is on disk now: make it durable before anything else.
            try flush()
        }
        observer.partitionOpened(PartitionRecoveryReport(
            topicPartition: TopicPartition(topic, partition), clean: cleanShutdown,
            durationNanos: monotonicNanos() - openedNanos, bytesScanned: scanned, bytesTruncated: truncated))
    }

    public static let wallClockMillis: @Sendable () -> Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: Offsets

    public var config: TopicConfig { state.withLock { $0.config } }
    public func update(config: TopicConfig) { state.withLock { $0.config = config } }

    /// First offset still in the log.
    public var startOffset: Int64 { state.withLock { $0.segments.first!.baseOffset } }
    /// Offset the next record will get (log end offset).
    public var endOffset: Int64 { state.withLock { $0.segments.last!.nextOffset } }
    /// Offsets below it are readable by consumers. A single node acknowledges at the log end.
    public var highWatermark: Int64 { endOffset }
    /// Offsets below it are on stable storage.
    public var durableOffset: Int64 { state.withLock { $0.durableOffset } }
    /// Bytes on disk over all segments.
    public var sizeBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + $1.sizeBytes } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// The error that stopped the log, if one did.
    public var failure: StorageError? { state.withLock { $0.failure } }

    // MARK: Append

    /// Validates producer batches (CRC included), assigns their offsets in place and appends them.
    public func append(_ batches: inout ByteBuffer) throws -> AppendResult {
        let maxBytes = config.maxMessageBytes
        let validated: ProducedBatches
        do {
            validated = try ProducedBatches.validate(batches, maxBatchBytes: maxBytes)
        } catch let error as RecordsError where error.code == .badLength && error.message.contains("over the limit") {
            throw StorageError(.recordTooLarge, error.message)
        }
        return try append(validated: validated, &batches)
    }

    /// Appends batches already validated by `ProducedBatches.validate`.
    public func append(validated: ProducedBatches, _ batches: inout ByteBuffer) throws -> AppendResult {
        var validated = validated
        let (result, flushNow) = try state.withLock { s -> (AppendResult, Bool) in
            if let failure = s.failure { throw failure }
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let now = clock()
            var active = s.segments.last!
            let incoming = Int64(batches.readableBytes)
            if !active.isEmpty && (active.sizeBytes + incoming > s.config.segmentBytes
                                   || now - active.createdAtMillis >= s.config.segmentMillis
                                   || active.nextOffset - active.baseOffset + validated.recordCount > Int64(UInt32.max)) {
                active = try roll(&s, now: now)
            }
            let base = active.nextOffset
            validated.assignOffsets(startingAt: base, in: &batches)
            do {
                try active.append(batches, batches: validated.batches)
            } catch let error as StorageError {
                // The file may hold part of the batch: stop here; recovery truncates it on restart.
                let failure = StorageError(.logFailed, "partition \(topic)-\(partition) stopped after a failed write: \(error.message)")
                s.failure = failure
                observer.partitionStopped(TopicPartition(topic, partition), error: failure)
                throw failure
            }
            s.messagesSinceFlush += validated.recordCount
            let flushNow = s.config.flushMessages > 0 && s.messagesSinceFlush >= s.config.flushMessages
            return (AppendResult(baseOffset: base, lastOffset: base + validated.recordCount - 1, recordCount: validated.recordCount), flushNow)
        }
        if flushNow {
            startGroupCommit()
        }
        return result
    }

    /// Closes the active segment (its indexes are written; its log is fsynced by the
    /// next flush) and opens a new one at the log end.
    private func roll(_ s: inout State, now: Int64) throws -> LogSegment {
        let old = s.segments.last!
        try old.writeIndexes(sync: false)
        s.unsyncedSegments.append(old)
        let segment = try LogSegment(create: directory, baseOffset: old.nextOffset, files: files,
                                     indexIntervalBytes: s.config.indexIntervalBytes, nowMillis: now)
        s.segments.append(segment)
        try Directory.sync(directory)
        return segment
    }

    /// Rolls the active segment now if it is not empty (used by tests and admin).
    public func roll() throws {
        try state.withLock { s in
            if !s.segments.last!.isEmpty { _ = try roll(&s, now: clock()) }
        }
    }

    // MARK: Durability

    /// Returns once every offset below `offset` is on stable storage. Appends that
    /// wait together share one fsync (group commit). Throws if the fsync failed:
    /// a failed fsync is never retried and reported as success, because the
    /// kernel may have dropped the dirty pages.
    public func waitUntilDurable(_ offset: Int64) async throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
        if state.withLock({ $0.durableOffset }) >= offset { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let start = committer.withLock { c -> Bool in
                c.waiters.append((offset, continuation))
                if c.inFlight { return false }
                c.inFlight = true
                return true
            }
            if start { runGroupCommit() }
        }
    }

    private func startGroupCommit() {
        let start = committer.withLock { c -> Bool in
            if c.inFlight { return false }
            c.inFlight = true
            return true
        }
        if start { runGroupCommit() }
    }

    /// One round: fsync everything appended so far on a background thread, then
    /// release the waiters it covers; go again if newer waiters arrived meanwhile.
    private func runGroupCommit() {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            var result: Result<Int64, StorageError>
            do {
                result = .success(try flushReturningOffset())
            } catch let error as StorageError {
                result = .failure(error)
            } catch {
                result = .failure(StorageError(.io, "\(error)"))
            }
            let (ready, again) = committer.withLock { c -> ([CheckedContinuation<Void, Error>], Bool) in
                var ready: [CheckedContinuation<Void, Error>] = []
                switch result {
                case .success(let durable):
                    c.waiters.removeAll { w in
                        if w.offset <= durable { ready.append(w.continuation); return true }
                        return false
                    }
                case .failure:
                    ready = c.waiters.map(\.continuation)
                    c.waiters.removeAll()
                }
                let again = !c.waiters.isEmpty
                c.inFlight = again
                return (ready, again)
            }
            for continuation in ready {
                switch result {
                case .success: continuation.resume()
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
            if !ready.isEmpty { observer.groupCommitCompleted(TopicPartition(topic, partition), waiters: ready.count) }
            if again { runGroupCommit() }
        }
    }

    /// fsyncs every unsynced segment and the active one; advances the durable offset.
    public func flush() throws {
        _ = try flushReturningOffset()
    }

    private func flushReturningOffset() throws -> Int64 {
        // Capture what to sync under the lock, fsync outside it so appends go on.
        let (toSync, target) = try state.withLock { s -> ([LogSegment], Int64) in
            if let failure = s.failure { throw failure }
            let segments = s.unsyncedSegments + [s.segments.last!]
            s.unsyncedSegments.removeAll()
            s.messagesSinceFlush = 0
            s.lastFlushMillis = clock()
            return (segments, s.segments.last!.nextOffset)
        }
        let syncStartNanos = monotonicNanos()
        do {
            for segment in toSync {
                try segment.syncLog()
            }
        } catch let error as StorageError {
            let failure = StorageError(.logFailed, "partition \(topic)-\(partition) stopped after a failed fsync: \(error.message)")
            state.withLock { $0.failure = failure }
            observer.partitionStopped(TopicPartition(topic, partition), error: failure)
            throw failure
        }
        observer.fsyncCompleted(TopicPartition(topic, partition), durationNanos: monotonicNanos() - syncStartNanos)
        state.withLock { s in s.durableOffset = max(s.durableOffset, target) }
        // Closed segments' indexes and the recovery point only need to be as durable as the log.
        if toSync.count > 1 {
            for segment in toSync.dropLast() { try? segment.writeIndexes(sync: true) }
            try? writeRecoveryPoint(toSync.last!.baseOffset)
        }
        return target
    }

    private func writeRecoveryPoint(_ offset: Int64) throws {
        try Directory.writeAtomically(Array("\(offset)\n".utf8), to: recoveryPointPath, io: files.io)
    }

    /// Runs the `flush.ms` policy: fsync if the last flush is older than the topic allows.
    public func flushIfDue(now: Int64) {
        let due = state.withLock { s in
            s.config.flushMillis >= 0 && s.failure == nil && !s.closed
                && now - s.lastFlushMillis >= s.config.flushMillis && s.durableOffset < s.segments.last!.nextOffset
        }
        if due { startGroupCommit() }
    }

    // MARK: Read

    /// Locates the batches from `offset` on, up to `maxBytes` (at least one whole batch).
    /// `offset` must be within [start, end]; at the end, the span is nil.
    public func read(from offset: Int64, maxBytes: Int) throws -> LogReadResult {
        try state.withLock { s in
            let start = s.segments.first!.baseOffset
            let end = s.segments.last!.nextOffset
            guard offset >= start && offset <= end else {
                throw StorageError(.offsetOutOfRange, "offset \(offset) is outside the log of \(topic)-\(partition), which holds \(start)..<\(end)")
            }
            var span: FileSpan?
            if offset < end {
                var i = Self.segmentIndex(s.segments, for: offset)
                while span == nil && i < s.segments.count {
                    span = try s.segments[i].locate(offset: offset, maxBytes: max(1, maxBytes))
                    i += 1
                }
            }
            return LogReadResult(span: span, logStartOffset: start, highWatermark: end)
        }
    }

    /// Reads the bytes of the batches from `offset` on (a copy through user space:
    /// for tests, tools and non-zero-copy paths).
    public func readBytes(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        let result = try read(from: offset, maxBytes: maxBytes)
        guard let span = result.span else { return ByteBuffer() }
        return try withSegment(path: span.path) { segment in
            try segment.readBytes(position: span.position, length: span.length)
        }
    }

    /// A private descriptor of the span's segment file, for sendfile; the caller closes it.
    /// Stays valid (the inode lives on) even if retention deletes the segment meanwhile.
    public func openDescriptor(for span: FileSpan) throws -> Int32 {
        try withSegment(path: span.path) { try $0.duplicateDescriptor() }
    }

    private func withSegment<R>(path: String, _ body: (LogSegment) throws -> R) throws -> R {
        try state.withLock { s in
            guard let segment = s.segments.first(where: { $0.logPath == path }) else {
                throw StorageError(.offsetOutOfRange, "segment \(path) was deleted by retention")
            }
            return try body(segment)
        }
    }

    static func segmentIndex(_ segments: [LogSegment], for offset: Int64) -> Int {
        var lo = 0
        var hi = segments.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if segments[mid].baseOffset <= offset { lo = mid + 1 } else { hi = mid }
        }
        return max(0, lo - 1)
    }

    /// The earliest offset whose record timestamp is ≥ `timestamp`, or nil if none is.
    public func offset(forTimestamp timestamp: Int64) throws -> Int64? {
        try state.withLock { s in
            for segment in s.segments where segment.maxTimestamp >= timestamp {
                if let offset = try segment.offset(forTimestamp: timestamp) { return offset }
            }
            return nil
        }
    }

    // MARK: Retention

    /// Deletes closed segments past `retention.ms` (by their newest timestamp) or
    /// beyond `retention.bytes`, oldest first. The active segment is never deleted.
    /// Returns how many segments were deleted.
    @discardableResult
    public func applyRetention(now: Int64) throws -> Int {
        try state.withLock { s in
            var deleted = 0
            var total = s.segments.reduce(Int64(0)) { $0 + $1.sizeBytes }
            while s.segments.count > 1 {
                let oldest = s.segments[0]
                let expired = s.config.retentionMillis >= 0 && oldest.maxTimestamp >= 0
                    && now - oldest.maxTimestamp > s.config.retentionMillis
                let oversize = s.config.retentionBytes >= 0 && total - oldest.sizeBytes >= s.config.retentionBytes
                guard expired || oversize else { break }
                s.segments.removeFirst()
                s.unsyncedSegments.removeAll { $0 === oldest }
                total -= oldest.sizeBytes
                try oldest.delete()
                observer.segmentDeleted(TopicPartition(topic, partition), baseOffset: oldest.baseOffset, bytes: oldest.sizeBytes, reason: expired ? .time : .size)
                deleted += 1
            }
            if deleted > 0 { try Directory.sync(directory) }
            return deleted
        }
    }

    // MARK: Lifecycle

    /// Flushes everything, writes the indexes and closes the files. Idempotent.
    /// With `sync: false` nothing is fsynced: the caller syncs the whole file
    /// system once afterwards (what `LogManager.close()` does for all partitions).
    public func close(sync: Bool = true) throws {
        let alreadyClosed = state.withLock { s -> Bool in
            defer { s.closed = true }
            return s.closed
        }
        if alreadyClosed { return }
        if failure == nil {
            if sync { try flush() }
            try state.withLock { s in
                for segment in s.segments { try segment.writeIndexes(sync: sync) }
                let base = s.segments.last!.baseOffset
                let point = Array("\(base)\n".utf8)
                if base == 0 && !Directory.fileExists(recoveryPointPath) {
                    // 0 is what a missing file means: nothing to write.
                } else if sync {
                    try Directory.writeAtomically(point, to: recoveryPointPath, io: files.io)
                } else {
                    // Not atomic, but a torn file only makes the next recovery scan more.
                    try files.withDescriptor(recoveryPointPath) { fd in
                        try files.io.truncate(fd, to: 0)
                        try point.withUnsafeBytes { try files.io.pwrite(fd, $0, at: 0) }
                    }
                }
            }
        }
        state.withLock { s in
            for segment in s.segments { segment.closeFiles() }
            files.forget(recoveryPointPath)
        }
    }

    /// Closes the log and removes its directory.
    public func delete() throws {
        state.withLock { s in
            s.closed = true
            for segment in s.segments { segment.closeFiles() }
        }
        committer.withLock { c in
            for w in c.waiters { w.continuation.resume(throwing: StorageError(.closed, "partition deleted")) }
            c.waiters.removeAll()
        }
        try Directory.removeTree(directory)
    }
}

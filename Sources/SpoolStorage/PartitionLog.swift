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

    public init(baseOffset: Int64, lastOffset: Int64, recordCount: Int64) {
        precondition(lastOffset - baseOffset + 1 == recordCount, "an append result covers its records exactly")
        self.baseOffset = baseOffset
        self.lastOffset = lastOffset
        self.recordCount = recordCount
    }
}

/// What a read found: a span of whole batches in one segment file, ready for `sendfile`.
public struct LogReadResult: Sendable {
    /// The batches, or nil when the offset is the log end (nothing to read yet).
    public var span: FileSpan?
    public var logStartOffset: Int64
    public var highWatermark: Int64
}

/// Runs storage background work (group-commit fsyncs, the fsync after a roll). The
/// default hands it to a global dispatch queue; tests pass one they drain themselves,
/// so that a simulated crash lands at a reproducible point.
public typealias StorageExecutor = @Sendable (@escaping @Sendable () -> Void) -> Void

/// One partition's log: an ordered set of segments in one directory, of which
/// the last is active and takes appends.
///
/// The log holds policy — when to roll, what retention deletes, what recovery
/// scans, when to fsync — and serialises access to its segments with one lock.
/// Appends are `pwrite`s into the page cache; durability is separate: call
/// ``waitUntilDurable(_:)`` (what `acks=all` does) and one fsync serves every
/// append waiting for it (group commit). fsyncs (of logs, of indexes, of the
/// directory after a roll) never run under the lock.
///
/// Failures: a failed `write` or `fsync` stops the partition (``failure``), because
/// what is on disk is then unknown. A failed `open`/`dup` (no descriptors left) fails
/// only the one call, with `.resourceExhausted`. A partition stopped by a failed
/// write recovers by itself: the next append after ``writeFailureRetryMillis``
/// truncates the torn tail back to the last whole batch and tries again. One stopped
/// by a failed fsync stays stopped until ``recover()`` (an admin action) re-opens it
/// as a restart would, re-checking every segment from the recovery point.
public final class PartitionLog: Sendable {
    public let topic: String
    public let partition: Int32
    public let directory: String
    let files: FileDescriptorCache
    let clock: @Sendable () -> Int64
    let executor: StorageExecutor
    let observer: any StorageObserver

    /// How long a partition stopped by a failed write waits before an append tries again.
    public static let writeFailureRetryMillis: Int64 = 1000

    enum FailureKind {
        /// A write failed: the in-memory state is exact; the file may hold a torn tail past it.
        case write
        /// An fsync failed: the kernel may have dropped pages; only a full re-check helps.
        case fsync
    }

    struct State {
        var config: TopicConfig
        var segments: [LogSegment]
        /// Closed segments rolled since their log and indexes were last fsynced.
        var unsyncedSegments: [LogSegment] = []
        /// Files were created or removed in the directory since its last fsync.
        var directoryNeedsSync = false
        var messagesSinceFlush: Int64 = 0
        var lastFlushMillis: Int64
        /// Everything below this offset is on stable storage.
        var durableOffset: Int64
        /// Set when a write or fsync failed: appends are refused until recovery.
        var failure: StorageError?
        var failureKind: FailureKind = .write
        var failedAtMillis: Int64 = 0
        /// Closed, or deleted with its topic: this handle refuses every call from then on,
        /// so it can never touch the files of a topic re-created under the same name.
        var closed = false
        /// Offsets below it were deleted by DeleteRecords (persisted in `log-start-offset`);
        /// the first segment may still hold some of them until it is deleted whole.
        var deletedBelow: Int64 = 0
        /// The log cleaner is rewriting closed segments: retention leaves them alone meanwhile.
        var cleaning = false

        /// Leader epoch → start offset (KIP-101), checkpointed in the partition directory.
        var epochs: LeaderEpochFile
        /// The replicated high watermark; nil in single-node mode, where it is the log end.
        var replicatedHighWatermark: Int64?

        /// Offsets below it are readable by consumers.
        var highWatermark: Int64 {
            min(replicatedHighWatermark ?? segments.last!.nextOffset, segments.last!.nextOffset)
        }

        /// The first offset a reader may ask for.
        var start: Int64 { max(segments.first!.baseOffset, min(deletedBelow, segments.last!.nextOffset)) }
    }

    struct Committer {
        var inFlight = false
        var waiters: [(offset: Int64, continuation: CheckedContinuation<Void, Error>)] = []
    }

    let state: Mutex<State>
    private let committer = Mutex(Committer())
    /// The recovery point last made durable; its lock also serialises the file's rewrites.
    private let recoveryPoint: Mutex<Int64>
    /// The log start offset last made durable; its lock serialises the checkpoint's rewrites.
    private let logStartCheckpoint = Mutex<Int64>(0)
    private let recoveryPointPath: String
    /// The checkpoint of the log start offset DeleteRecords moved (absent until it does).
    private let logStartPath: String
    /// Name of the log-start checkpoint file in a partition directory.
    public static let logStartFileName = "log-start-offset"
    /// Name of the high-watermark checkpoint file (replicated partitions only).
    public static let highWatermarkFileName = "high-watermark"
    private let highWatermarkPath: String
    /// The high watermark last checkpointed; its lock serialises the file's rewrites.
    private let highWatermarkCheckpoint = Mutex<Int64?>(nil)

    /// Opens (or creates) the partition log in `directory`.
    /// With `cleanShutdown == false`, every segment from the recovery point on is
    /// re-validated and truncated at the first torn or corrupt batch.
    public init(
        directory: String, topic: String, partition: Int32, config: TopicConfig, files: FileDescriptorCache,
        cleanShutdown: Bool, clock: @escaping @Sendable () -> Int64 = wallClockMillis,
        executor: @escaping StorageExecutor = PartitionLog.globalExecutor,
        observer: any StorageObserver = NoStorageObserver()
    ) throws {
        let openedNanos = monotonicNanos()
        self.observer = observer
        self.topic = topic
        self.partition = partition
        self.directory = directory
        self.files = files
        self.clock = clock
        self.executor = executor
        self.recoveryPointPath = directory + "/recovery-point"
        self.logStartPath = directory + "/" + Self.logStartFileName
        self.highWatermarkPath = directory + "/" + Self.highWatermarkFileName
        let io = files.io
        let created = !Directory.exists(directory, io: io)
        try Directory.create(directory, io: io)
        let now = clock()
        let point = try Self.readRecoveryPoint(recoveryPointPath, io: io)
        let (segments, recovered) = try Self.loadSegments(directory, config: config, files: files, cleanShutdown: cleanShutdown,
                                                          recoveryPoint: point, now: now)
        let end = segments.last!.nextOffset
        let epochs = try LeaderEpochFile(directory: directory, logEnd: end, io: io)
        var initial = State(config: config, segments: segments, lastFlushMillis: now,
                            durableOffset: cleanShutdown ? end : min(end, point), epochs: epochs)
        if Directory.fileExists(highWatermarkPath, io: io) {
            initial.replicatedHighWatermark = min(end, try Self.readRecoveryPoint(highWatermarkPath, io: io))
            highWatermarkCheckpoint.withLock { $0 = initial.replicatedHighWatermark }
        }
        initial.deletedBelow = try Self.readRecoveryPoint(directory + "/" + Self.logStartFileName, io: io)
        initial.directoryNeedsSync = created || !cleanShutdown
        initial.unsyncedSegments = recovered
        state = Mutex(initial)
        logStartCheckpoint.withLock { $0 = initial.deletedBelow }
        recoveryPoint = Mutex(point)
        if !cleanShutdown {
            // What survived recovery is what is on disk now: make it durable before anything else.
            try flush()
        }
        observer.partitionOpened(Self.report(topic, partition, segments, clean: cleanShutdown, since: openedNanos))
    }

    /// What opening (or re-opening) the segments did, for the observer.
    static func report(_ topic: String, _ partition: Int32, _ segments: [LogSegment], clean: Bool, since: Int64) -> PartitionRecoveryReport {
        PartitionRecoveryReport(
            topicPartition: TopicPartition(topic, partition), clean: clean, durationNanos: monotonicNanos() - since,
            bytesScanned: segments.reduce(0) { $0 + $1.recoveryScannedBytes },
            bytesTruncated: segments.reduce(0) { $0 + $1.recoveryTruncatedBytes })
    }

    public static let wallClockMillis: @Sendable () -> Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public static let globalExecutor: StorageExecutor = { work in
        DispatchQueue.global(qos: .userInitiated).async(execute: work)
    }

    static func readRecoveryPoint(_ path: String, io: FileIO) throws -> Int64 {
        guard let bytes = try Directory.readFile(path, io: io), let text = String(validating: bytes, as: UTF8.self),
              let value = Int64(text.filter { !$0.isWhitespace }), value >= 0 else { return 0 }
        return value
    }

    /// Lists and opens the segments of `directory`. Segments from the one holding the
    /// recovery point on (all of them after an unclean stop without one) are re-validated;
    /// a segment cut short by recovery takes every later segment with it. Also returns the
    /// re-checked closed segments, with their rebuilt indexes written: what survived
    /// recovery may still be only in the page cache, so the first flush fsyncs them.
    static func loadSegments(_ directory: String, config: TopicConfig, files: FileDescriptorCache, cleanShutdown: Bool,
                             recoveryPoint: Int64, now: Int64) throws -> (segments: [LogSegment], recovered: [LogSegment]) {
        do {
            return try loadSegmentsOrFail(directory, config: config, files: files, cleanShutdown: cleanShutdown,
                                          recoveryPoint: recoveryPoint, now: now)
        } catch let error as DataStateUnknown {
            // A truncation by recovery failed: the open fails (nothing was acknowledged from it).
            throw error.cause
        }
    }

    private static func loadSegmentsOrFail(_ directory: String, config: TopicConfig, files: FileDescriptorCache, cleanShutdown: Bool,
                                           recoveryPoint: Int64, now: Int64) throws -> (segments: [LogSegment], recovered: [LogSegment]) {
        let io = files.io
        var bases: [Int64] = []
        try SegmentSwap.completeInterrupted(in: directory, io: io)
        var compacted: Set<Int64> = []
        for name in try Directory.list(directory, io: io) {
            if name.hasSuffix(".log"), let base = Int64(name.dropLast(4)) {
                bases.append(base)
            } else if let base = SegmentSwap.markerBase(of: name) {
                compacted.insert(base)
            } else if name.hasSuffix(".tmp") || name.hasSuffix(".deleted") {
                try? Directory.removeFile(directory + "/" + name, io: io)
            }
        }
        bases.sort()
        var segments: [LogSegment] = []
        for (i, base) in bases.enumerated() {
            let following = i + 1 < bases.count ? bases[i + 1] : nil
            let mustRecover = !cleanShutdown && (following == nil || following! > recoveryPoint)
            let segment = try LogSegment(
                open: directory, baseOffset: base, files: files, indexIntervalBytes: config.indexIntervalBytes,
                recover: mustRecover, knownNextOffset: following, nowMillis: now, compacted: compacted.contains(base))
            if let last = segments.last, segment.baseOffset != last.nextOffset {
                if mustRecover && segment.baseOffset > last.nextOffset {
                    // A gap: the previous segment was cut by recovery, or this one is stray.
                    try segment.delete()
                    for later in bases[(i + 1)...] {
                        try LogSegment(open: directory, baseOffset: later, files: files, indexIntervalBytes: config.indexIntervalBytes,
                                       recover: false, knownNextOffset: nil, nowMillis: now, compacted: compacted.contains(later)).delete()
                    }
                    break
                }
                throw StorageError(.corrupt, "segment \(base) does not follow segment \(last.baseOffset), which ends at \(last.nextOffset), in \(directory)")
            }
            segments.append(segment)
            // A truncated segment invalidates all after it.
            if mustRecover, let following, segment.nextOffset < following {
                for later in bases[(i + 1)...] {
                    try LogSegment(open: directory, baseOffset: later, files: files, indexIntervalBytes: config.indexIntervalBytes,
                                   recover: false, knownNextOffset: nil, nowMillis: now, compacted: compacted.contains(later)).delete()
                }
                break
            }
        }
        if segments.isEmpty {
            segments.append(try LogSegment(create: directory, baseOffset: 0, files: files,
                                           indexIntervalBytes: config.indexIntervalBytes, nowMillis: now))
        }
        try rebuildTransactionIndexes(segments)
        for segment in segments { try? segment.writeTxnIndexIfDirty() }
        var recovered: [LogSegment] = []
        if !cleanShutdown {
            for segment in segments.dropLast() where segment.indexesDirty {
                try? segment.writeIndexes()
                recovered.append(segment)
            }
        }
        return (segments, recovered)
    }

    // MARK: Offsets

    public var config: TopicConfig { state.withLock { $0.config } }
    public func update(config: TopicConfig) { state.withLock { $0.config = config } }

    /// First offset still in the log.
    public var startOffset: Int64 { state.withLock { $0.start } }
    /// Offset the next record will get (log end offset).
    public var endOffset: Int64 { state.withLock { $0.segments.last!.nextOffset } }
    /// The offsets a consumer may fetch from, read together: `start...end` (the end itself
    /// is valid and waits for new records). A committed offset outside it cannot be
    /// resumed from; the consumer side resets it (`auto.offset.reset`).
    public var fetchableOffsets: ClosedRange<Int64> {
        state.withLock { $0.start...$0.segments.last!.nextOffset }
    }
    /// Whether a consumer positioned at `offset` (a committed offset) can fetch from it.
    public func isFetchable(_ offset: Int64) -> Bool { fetchableOffsets.contains(offset) }
    /// Offsets below it are readable by consumers: the replicated high watermark, or the
    /// log end in single-node mode (``setHighWatermark(_:)`` never called).
    public var highWatermark: Int64 { state.withLock { $0.highWatermark } }
    /// Whether a replicated high watermark is kept (cluster mode).
    public var isReplicated: Bool { state.withLock { $0.replicatedHighWatermark != nil } }

    /// Sets the replicated high watermark (clamped to the log end; it never moves back
    /// except by truncation). In memory: ``checkpointHighWatermark()`` makes it durable.
    public func setHighWatermark(_ offset: Int64) {
        state.withLock { s in
            let end = s.segments.last!.nextOffset
            s.replicatedHighWatermark = min(end, max(offset, s.replicatedHighWatermark ?? 0))
        }
    }

    /// Writes the high watermark to its checkpoint file (atomically, fsynced) if it moved
    /// since the last one. A no-op in single-node mode.
    public func checkpointHighWatermark() throws {
        guard let hw = state.withLock({ $0.closed ? nil : $0.replicatedHighWatermark }) else { return }
        try highWatermarkCheckpoint.withLock { written in
            guard written != hw else { return }
            try Directory.writeAtomically(Array("\(hw)\n".utf8), to: highWatermarkPath, io: files.io)
            written = hw
        }
    }

    // MARK: Leader epochs

    /// The leader epochs known to this log, oldest first.
    public var leaderEpochs: [LeaderEpochFile.Entry] { state.withLock { $0.epochs.entries } }
    /// The newest leader epoch that appended (or was assigned), nil when none.
    public var latestLeaderEpoch: Int32? { state.withLock { $0.epochs.latestEpoch } }

    /// Records a new leader's epoch at the log end (Kafka does this at election).
    public func assignLeaderEpoch(_ epoch: Int32) throws {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            try s.epochs.assign(epoch: epoch, startOffset: s.segments.last!.nextOffset)
        }
    }

    /// OffsetForLeaderEpoch: the largest epoch ≤ `epoch` this log knows and where it ends.
    public func endOffset(forLeaderEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        state.withLock { $0.epochs.endOffset(for: epoch, logEnd: $0.segments.last!.nextOffset) }
    }
    /// Offsets below it are on stable storage.
    public var durableOffset: Int64 { state.withLock { $0.durableOffset } }
    /// Bytes on disk over all segments.
    public var sizeBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + $1.sizeBytes } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// The error that stopped the log, if one did.
    public var failure: StorageError? { state.withLock { $0.failure } }
    /// False once closed or deleted.
    public var isOpen: Bool { state.withLock { !$0.closed } }

    // MARK: Append

    /// Validates producer batches (CRC included), assigns their offsets in place and appends them.
    public func append(_ batches: inout ByteBuffer) throws -> AppendResult {
        try append(validated: validate(batches), &batches)
    }

    /// Checks producer batches against this log's rules (format, CRC, `max.message.bytes`)
    /// without appending them.
    public func validate(_ batches: ByteBuffer) throws -> ProducedBatches {
        let config = self.config
        let maxBytes = config.maxMessageBytes
        do {
            if config.cleanupPolicy.compact { try CompactedRecords.requireKeys(batches) }
            return try ProducedBatches.validate(batches, maxBatchBytes: maxBytes)
        } catch let error as RecordsError where error.code == .batchTooLarge {
            throw StorageError(.recordTooLarge, error.message)
        }
    }

    /// Appends batches already validated by `ProducedBatches.validate`.
    /// With `leaderEpoch` (a replicated partition's leader), every batch is stamped with it
    /// and a newer epoch is recorded in the epoch file; without it (single-node mode) the
    /// batches keep the producer's value and no epoch file is kept.
    public func append(validated: ProducedBatches, _ batches: inout ByteBuffer, leaderEpoch: Int32? = nil) throws -> AppendResult {
        precondition((leaderEpoch ?? 0) >= 0, "a leader epoch is never negative")
        var validated = validated
        let (result, syncNow) = try state.withLock { s -> (AppendResult, Bool) in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let now = clock()
            if let failure = s.failure { try retryAfterWriteFailure(&s, failure, now: now) }
            var active = s.segments.last!
            let incoming = Int64(batches.readableBytes)
            var rolled = false
            if !active.isEmpty && (active.sizeBytes + incoming > s.config.segmentBytes
                                   || Self.age(of: active, incomingTimestamp: validated.maxTimestamp, now: now) >= s.config.segmentMillis
                                   || active.nextOffset - active.baseOffset + validated.recordCount > Int64(UInt32.max)) {
                active = try roll(&s, now: now)
                rolled = true
            }
            let base = active.nextOffset
            validated.assignOffsets(startingAt: base, in: &batches)
            // The leader's epoch, outside the CRC (which covers attributes onwards).
            if let leaderEpoch {
            for i in validated.batches.indices {
                batches.setInteger(leaderEpoch, at: validated.batches[i].index + RecordBatchHeader.Position.partitionLeaderEpoch)
                validated.batches[i].header.partitionLeaderEpoch = leaderEpoch
            }
            // Normally already recorded at election (`assignLeaderEpoch`): no file write here.
            if s.epochs.latestEpoch.map({ leaderEpoch > $0 }) ?? true {
                try s.epochs.assign(epoch: leaderEpoch, startOffset: base)
            }
            }
            do {
                try active.append(batches, batches: validated.batches)
            } catch let error as DataStateUnknown {
                // The file may hold part of the batch: stop here; the in-memory state still
                // ends at the last whole batch, which is where a retry or recovery cuts.
                // Cut it now if we can (truncating needs no free space), so that a group
                // commit of the appends before it never makes a torn tail durable.
                try? files.withDescriptor(active.logPath) { fd in try files.io.truncate(fd, to: active.sizeBytes) }
                throw stop(&s, .write, error.cause, now: now)
            }
            s.messagesSinceFlush += validated.recordCount
            let flushNow = s.config.flushMessages > 0 && s.messagesSinceFlush >= s.config.flushMessages
            return (AppendResult(baseOffset: base, lastOffset: base + validated.recordCount - 1, recordCount: validated.recordCount),
                    flushNow || rolled)
        }
        if syncNow {
            startGroupCommit()
        }
        return result
    }

    /// Appends a leader's batches as they are (a follower's fetch): offsets and leader
    /// epochs kept, CRCs checked, and the first batch must start at this log's end and
    /// each next one where the previous ended. A batch of a newer leader epoch adds that
    /// epoch to the epoch file. Returns the append and the batches' headers (for the
    /// producer state).
    public func appendAsFollower(_ batches: ByteBuffer) throws -> (result: AppendResult, batches: ProducedBatches) {
        let validated: ProducedBatches
        do {
            validated = try ProducedBatches.validate(batches)
        } catch let error as RecordsError {
            throw StorageError(.corrupt, "a replicated batch of \(topic)-\(partition) is invalid: \(error.message)")
        }
        let (result, syncNow) = try state.withLock { s -> (AppendResult, Bool) in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let now = clock()
            if let failure = s.failure { try retryAfterWriteFailure(&s, failure, now: now) }
            var active = s.segments.last!
            var next = active.nextOffset
            let base = next
            for (_, h) in validated.batches {
                guard h.baseOffset == next else {
                    throw StorageError(.offsetOutOfRange, "a replicated batch of \(topic)-\(partition) starts at \(h.baseOffset), not at \(next)")
                }
                next = h.nextOffset
            }
            let incoming = Int64(batches.readableBytes)
            var rolled = false
            if !active.isEmpty && (active.sizeBytes + incoming > s.config.segmentBytes
                                   || Self.age(of: active, incomingTimestamp: validated.maxTimestamp, now: now) >= s.config.segmentMillis
                                   || next - active.baseOffset > Int64(UInt32.max)) {
                active = try roll(&s, now: now)
                rolled = true
            }
            for (_, h) in validated.batches where h.partitionLeaderEpoch >= 0 {
                if s.epochs.latestEpoch.map({ h.partitionLeaderEpoch > $0 }) ?? true {
                    try s.epochs.assign(epoch: h.partitionLeaderEpoch, startOffset: h.baseOffset)
                }
            }
            do {
                try active.append(batches, batches: validated.batches)
            } catch let error as DataStateUnknown {
                try? files.withDescriptor(active.logPath) { fd in try files.io.truncate(fd, to: active.sizeBytes) }
                throw stop(&s, .write, error.cause, now: now)
            }
            s.messagesSinceFlush += validated.recordCount
            let flushNow = s.config.flushMessages > 0 && s.messagesSinceFlush >= s.config.flushMessages
            return (AppendResult(baseOffset: base, lastOffset: next - 1, recordCount: next - base), flushNow || rolled)
        }
        if syncNow { startGroupCommit() }
        return (result, validated)
    }

    /// Cuts the log so that it ends at `offset` (a follower dropping a tail the leader does
    /// not have): later segments deleted, the one holding `offset` cut, the epoch file and
    /// the high watermark cut with it. Crash-safe by order: the recovery point moves back
    /// first (a crash part-way re-checks the cut segment at open), then the files are cut
    /// and fsynced, then the epoch file is rewritten (entries past the log end are dropped
    /// at open too). `offset` must be a batch boundary ≥ the first segment's base. At or past
    /// the log end no record is cut, but an epoch entry starting at the log end is dropped: an
    /// epoch this replica assigned as leader without appending anything (as Kafka's
    /// `truncateTo` does). The new leader never had that epoch, and a follower still naming it
    /// as its last fetched epoch would be told it diverged at every fetch.
    public func truncate(to offset: Int64) throws {
        let cut = try state.withLock { s -> Bool in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            guard offset < s.segments.last!.nextOffset else { return false }
            guard offset >= s.segments.first!.baseOffset else {
                throw StorageError(.offsetOutOfRange, "cannot truncate \(topic)-\(partition) to \(offset), below its first segment \(s.segments.first!.baseOffset)")
            }
            let keeper = s.segments[Self.segmentIndex(s.segments, for: offset)]
            try resetRecoveryPoint(to: keeper.baseOffset)
            do {
                while s.segments.count > 1, let last = s.segments.last, last.baseOffset >= offset {
                    s.segments.removeLast()
                    s.unsyncedSegments.removeAll { $0 === last }
                    try last.delete()
                }
                try s.segments.last!.truncate(from: offset)
            } catch let error as DataStateUnknown {
                throw stop(&s, .write, error.cause, now: clock())
            }
            s.unsyncedSegments.removeAll { $0 === s.segments.last! }
            s.directoryNeedsSync = true
            s.durableOffset = min(s.durableOffset, s.segments.last!.nextOffset)
            if let hw = s.replicatedHighWatermark { s.replicatedHighWatermark = min(hw, s.segments.last!.nextOffset) }
            return true
        }
        guard cut else {
            try state.withLock { s in try s.epochs.truncate(from: s.segments.last!.nextOffset) }
            return
        }
        try flush()
        try state.withLock { s in try s.epochs.truncate(from: s.segments.last!.nextOffset) }
        try checkpointHighWatermark()
    }

    /// Writes the recovery point even when it moves back (truncation).
    private func resetRecoveryPoint(to offset: Int64) throws {
        try recoveryPoint.withLock { written in
            guard offset < written else { return }
            try Directory.writeAtomically(Array("\(offset)\n".utf8), to: recoveryPointPath, io: files.io)
            written = offset
        }
    }

    /// How old the active segment is for `segment.ms`: like Kafka, the incoming batch's
    /// timestamp minus the segment's first batch timestamp, so that the age survives a
    /// restart; wall-clock time since this process opened it when there are no timestamps.
    static func age(of segment: LogSegment, incomingTimestamp: Int64, now: Int64) -> Int64 {
        if segment.rollingBaseTimestamp >= 0 && incomingTimestamp >= 0 {
            return incomingTimestamp - segment.rollingBaseTimestamp
        }
        return now - segment.createdAtMillis
    }

    func stop(_ s: inout State, _ kind: FailureKind, _ cause: StorageError, now: Int64) -> StorageError {
        let verb = kind == .write ? "write" : "fsync"
        let failure = StorageError(.logFailed, "partition \(topic)-\(partition) stopped after a failed \(verb): \(cause.message)",
                                   errno: cause.errno)
        if s.failure == nil || kind == .fsync {
            if s.failure == nil { observer.partitionStopped(TopicPartition(topic, partition), error: failure) }
            s.failure = failure
            s.failureKind = kind
        }
        s.failedAtMillis = now
        return failure
    }

    /// A partition stopped by a failed write tries again once `writeFailureRetryMillis`
    /// passed: the torn tail past the last whole batch is cut, and the append goes on.
    /// After a failed fsync it stays stopped (see ``recover()``).
    private func retryAfterWriteFailure(_ s: inout State, _ failure: StorageError, now: Int64) throws {
        guard s.failureKind == .write, now - s.failedAtMillis >= Self.writeFailureRetryMillis else { throw failure }
        s.failedAtMillis = now
        let active = s.segments.last!
        do {
            try files.withDescriptor(active.logPath) { fd in try files.io.truncate(fd, to: active.sizeBytes) }
        } catch {
            throw failure
        }
        s.failure = nil
    }

    /// Closes the active segment (its indexes are written now and fsynced with its log by
    /// the group commit the caller starts, which then moves the recovery point) and opens
    /// a new one at the log end. Nothing changes when the new file cannot be created.
    private func roll(_ s: inout State, now: Int64) throws -> LogSegment {
        let old = s.segments.last!
        let segment = try LogSegment(create: directory, baseOffset: old.nextOffset, files: files,
                                     indexIntervalBytes: s.config.indexIntervalBytes, nowMillis: now)
        // A failed index write leaves the indexes dirty: the recovery point stays before
        // this segment until close writes them again (its log is rescanned after a crash).
        try? old.writeIndexes()
        s.unsyncedSegments.append(old)
        s.segments.append(segment)
        s.directoryNeedsSync = true
        return segment
    }

    /// Rolls the active segment now if it is not empty (used by tests and admin).
    public func roll() throws {
        let rolled = try state.withLock { s -> Bool in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            guard !s.segments.last!.isEmpty else { return false }
            _ = try roll(&s, now: clock())
            return true
        }
        if rolled { startGroupCommit() }
    }

    // MARK: Durability

    /// Returns once every offset below `offset` is on stable storage. Appends that
    /// wait together share one fsync (group commit). Throws if the fsync failed:
    /// a failed fsync is never retried and reported as success, because the
    /// kernel may have dropped the dirty pages.
    ///
    /// A failed write stops later appends but not this: the appends before it are whole
    /// and exact in memory, so their fsync goes ahead and they are acknowledged (they are
    /// in the log, and an idempotent producer's state already counts them).
    public func waitUntilDurable(_ offset: Int64) async throws {
        if let failure = state.withLock({ $0.failureKind == .fsync ? $0.failure : nil }) { throw failure }
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
        executor { [self] in
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

    /// fsyncs every unsynced segment (log and indexes), the active one's log and, after a
    /// roll or retention, the directory; advances the durable offset and the recovery point.
    public func flush() throws {
        _ = try flushReturningOffset()
    }

    private struct FlushPlan {
        var closed: [(segment: LogSegment, indexes: Bool)]
        /// `.txnindex` files written since their last fsync (closed segments and the active one).
        var txnIndexes: [LogSegment]
        var active: LogSegment
        var target: Int64
        var directory: Bool
        /// The active log has appends since its last fsync.
        var activeDirty: Bool
        /// Where the recovery point may move once this flush succeeded.
        var recoveryPoint: Int64
    }

    private func flushReturningOffset() throws -> Int64 {
        // Capture what to sync under the lock, fsync outside it so appends go on.
        let plan = try state.withLock { s -> FlushPlan in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            // After a failed write the log still ends at its last whole batch: flushing up
            // to there is sound. After a failed fsync nothing is known.
            if let failure = s.failure, s.failureKind == .fsync { throw failure }
            let closed = s.unsyncedSegments.map { segment -> (LogSegment, Bool) in
                defer { segment.indexesNeedSync = false }
                return (segment, segment.indexesNeedSync)
            }
            let txnIndexes = s.segments.filter(\.txnIndexNeedsSync)
            for segment in txnIndexes { segment.txnIndexNeedsSync = false }
            // The recovery point moves past closed segments whose indexes are on disk.
            let dirty = s.segments.dropLast().first { $0.indexesDirty || $0.txnIndexDirty }
            let plan = FlushPlan(closed: closed, txnIndexes: txnIndexes, active: s.segments.last!, target: s.segments.last!.nextOffset,
                                 directory: s.directoryNeedsSync, activeDirty: s.durableOffset < s.segments.last!.nextOffset,
                                 recoveryPoint: dirty?.baseOffset ?? s.segments.last!.baseOffset)
            s.unsyncedSegments.removeAll()
            s.directoryNeedsSync = false
            s.messagesSinceFlush = 0
            s.lastFlushMillis = clock()
            return plan
        }
        let syncStartNanos = monotonicNanos()
        do {
            for (segment, indexes) in plan.closed {
                try segment.syncLog()
                if indexes { try segment.syncIndexes() }
            }
            // An idle partition costs no fsync (thousands of them are closed at shutdown).
            if plan.activeDirty || !plan.closed.isEmpty { try plan.active.syncLog() }
            // After the logs: an entry never becomes durable before its marker.
            for segment in plan.txnIndexes { try segment.syncTxnIndex() }
            if plan.directory {
                do { try files.io.syncDirectory(directory) } catch let error as StorageError { throw DataStateUnknown(cause: error) }
            }
        } catch let error as DataStateUnknown {
            throw state.withLock { stop(&$0, .fsync, error.cause, now: clock()) }
        } catch {
            // No descriptor to fsync with: nothing was lost, the next flush does it all again.
            state.withLock { s in
                s.unsyncedSegments.insert(contentsOf: plan.closed.map(\.segment), at: 0)
                for (segment, indexes) in plan.closed where indexes { segment.indexesNeedSync = true }
                for segment in plan.txnIndexes { segment.txnIndexNeedsSync = true }
                s.directoryNeedsSync = s.directoryNeedsSync || plan.directory
            }
            throw error
        }
        if plan.activeDirty || !plan.closed.isEmpty {
            observer.fsyncCompleted(TopicPartition(topic, partition), durationNanos: monotonicNanos() - syncStartNanos)
        }
        state.withLock { s in s.durableOffset = max(s.durableOffset, plan.target) }
        // Everything below the active segment is on disk now: later recoveries can skip it.
        // Best effort: a stale recovery point only makes recovery scan more.
        try? moveRecoveryPoint(to: plan.recoveryPoint)
        return plan.target
    }

    private func moveRecoveryPoint(to offset: Int64) throws {
        try recoveryPoint.withLock { written in
            guard offset > written else { return }
            try Directory.writeAtomically(Array("\(offset)\n".utf8), to: recoveryPointPath, io: files.io)
            written = offset
        }
    }

    /// Runs the `flush.ms` policy: fsync if the last flush is older than the topic allows.
    public func flushIfDue(now: Int64) {
        let due = state.withLock { s in
            s.config.flushMillis >= 0 && (s.failure == nil || s.failureKind == .write) && !s.closed
                && now - s.lastFlushMillis >= s.config.flushMillis && s.durableOffset < s.segments.last!.nextOffset
        }
        if due { startGroupCommit() }
    }

    // MARK: Read

    /// Locates the batches from `offset` on, up to `maxBytes` (at least one whole batch).
    /// `offset` must be within [start, end]; at the end, the span is nil.
    public func read(from offset: Int64, maxBytes: Int) throws -> LogReadResult {
        try read(from: offset, maxBytes: maxBytes, upTo: nil)
    }

    /// `read(from:maxBytes:)` bounded to the batches that end at or before `bound` (a high
    /// watermark: consumers' reads stop there; `offset` may be at most the log end).
    public func read(from offset: Int64, maxBytes: Int, upTo bound: Int64?) throws -> LogReadResult {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let start = s.start
            let end = s.segments.last!.nextOffset
            guard offset >= start && offset <= end else {
                throw StorageError(.offsetOutOfRange, "offset \(offset) is outside the log of \(topic)-\(partition), which holds \(start)..<\(end)")
            }
            let limit = min(bound ?? end, end)
            var span: FileSpan?
            if offset < limit {
                var i = Self.segmentIndex(s.segments, for: offset)
                while span == nil && i < s.segments.count && s.segments[i].baseOffset < limit {
                    let segment = s.segments[i]
                    let maxPosition = limit < segment.nextOffset ? try segment.position(ofBatchesFrom: limit) : nil
                    span = try segment.locate(offset: offset, maxBytes: max(1, maxBytes), maxPosition: maxPosition)
                    i += 1
                }
            }
            return LogReadResult(span: span, logStartOffset: start, highWatermark: s.highWatermark)
        }
    }

    /// Reads the bytes of the batches from `offset` on (a copy through user space:
    /// for tests, tools and non-zero-copy paths).
    public func readBytes(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        let result = try read(from: offset, maxBytes: maxBytes)
        guard let span = result.span else { return ByteBuffer() }
        return try withSegment(path: span.path, generation: span.generation) { segment in
            try segment.readBytes(position: span.position, length: span.length)
        }
    }

    /// A private descriptor of the span's segment file, for sendfile; the caller closes it.
    /// Stays valid (the inode lives on) even if retention deletes the segment meanwhile.
    /// Throws `.resourceExhausted` when no descriptor is left (the partition goes on).
    public func openDescriptor(for span: FileSpan) throws -> Int32 {
        try withSegment(path: span.path, generation: span.generation) { try $0.duplicateDescriptor() }
    }

    private func withSegment<R>(path: String, generation: UInt64 = 0, _ body: (LogSegment) throws -> R) throws -> R {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            guard let segment = s.segments.first(where: { $0.logPath == path && (generation == 0 || $0.generation == generation) }) else {
                if s.segments.contains(where: { $0.logPath == path }) {
                    // The log cleaner replaced the segment: the offsets are still there; read again (retriable).
                    throw StorageError(.closed, "segment \(path) was replaced by the log cleaner; fetch again")
                }
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
        try record(atOrAfter: timestamp)?.offset
    }

    /// The first record whose timestamp is ≥ `timestamp` (offset and timestamp), or nil if
    /// none is. Segments whose max timestamp is earlier are skipped without reading them.
    public func record(atOrAfter timestamp: Int64) throws -> TimestampedOffset? {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let start = s.start
            for segment in s.segments where segment.maxTimestamp >= timestamp && segment.nextOffset > start {
                if let found = try segment.offset(forTimestamp: timestamp, from: start) { return found }
            }
            return nil
        }
    }

    /// The record with the largest timestamp (the first of equals), or nil when the log
    /// holds no timestamped record (ListOffsets `-3`).
    public func maxTimestampRecord() throws -> TimestampedOffset? {
        try state.withLock { s in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let start = s.start
            var best: TimestampedOffset?
            for segment in s.segments where segment.nextOffset > start && segment.maxTimestamp > (best?.timestamp ?? -1) {
                // A segment holding records DeleteRecords removed is searched from the log start.
                let found = segment.baseOffset >= start ? try segment.maxTimestampRecord() : try segment.maxTimestampRecord(from: start)
                if let found, found.timestamp > (best?.timestamp ?? -1) { best = found }
            }
            return best
        }
    }

    // MARK: Retention

    /// Deletes closed segments past `retention.ms` (by their newest timestamp) or
    /// beyond `retention.bytes`, oldest first. The active segment is never deleted.
    /// Deleting writes nothing, so it works on a full disk; the directory fsync runs
    /// after the lock is released. Returns how many segments were deleted.
    @discardableResult
    public func applyRetention(now: Int64) throws -> Int {
        let deleted = try state.withLock { s -> Int in
            if s.closed { return 0 }
            var deleted = 0
            var total = s.segments.reduce(Int64(0)) { $0 + $1.sizeBytes }
            while s.segments.count > 1 && !s.cleaning {
                let oldest = s.segments[0]
                // `cleanup.policy=compact` alone never deletes by time or size.
                let byPolicy = s.config.cleanupPolicy.delete
                let expired = byPolicy && s.config.retentionMillis >= 0 && oldest.maxTimestamp >= 0
                    && now - oldest.maxTimestamp > s.config.retentionMillis
                let oversize = byPolicy && s.config.retentionBytes >= 0 && total - oldest.sizeBytes >= s.config.retentionBytes
                let deletedRecords = oldest.nextOffset <= s.deletedBelow
                // A segment the cleaner emptied holds nothing (and no timestamp to expire by).
                let cleanedAway = oldest.isCompacted && oldest.sizeBytes == 0
                guard expired || oversize || deletedRecords || cleanedAway else { break }
                s.segments.removeFirst()
                s.unsyncedSegments.removeAll { $0 === oldest }
                total -= oldest.sizeBytes
                deleted += 1
                try oldest.delete()
                observer.segmentDeleted(TopicPartition(topic, partition), baseOffset: oldest.baseOffset, bytes: oldest.sizeBytes,
                                        reason: expired ? .time : oversize ? .size : .deleteRecords)
            }
            return deleted
        }
        if deleted > 0 {
            // Until this fsync a crash may bring a deleted segment back: harmless, it only
            // moves the log start back; its data was intact.
            try files.io.syncDirectory(directory)
        }
        return deleted
    }

    // MARK: DeleteRecords

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords): the checkpoint is
    /// made durable first, then every closed segment wholly below it is deleted. Records
    /// below it are gone for readers at once. `offset` must be within [start, end]; a lower
    /// one changes nothing. Returns the log start offset after the call (the low watermark).
    @discardableResult
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let target = try state.withLock { s -> Int64? in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            let end = s.segments.last!.nextOffset
            guard offset <= end && offset >= 0 else {
                throw StorageError(.offsetOutOfRange, "offset \(offset) is past the end \(end) of \(topic)-\(partition)")
            }
            return offset > s.start ? offset : nil
        }
        guard let target else { return startOffset }
        try logStartCheckpoint.withLock { written in
            guard target > written else { return }
            try Directory.writeAtomically(Array("\(target)\n".utf8), to: logStartPath, io: files.io)
            written = target
        }
        state.withLock { s in s.deletedBelow = max(s.deletedBelow, target) }
        try applyRetention(now: clock())
        return startOffset
    }

    // MARK: Lifecycle

    /// Recovers a stopped partition without a restart: re-opens it exactly as an unclean
    /// start would (every segment from the recovery point re-checked, a torn or corrupt
    /// tail truncated) and makes the result durable. Works on a running partition too.
    public func recover() throws {
        let startNanos = monotonicNanos()
        let segments = try state.withLock { s -> [LogSegment] in
            if s.closed { throw StorageError(.closed, "partition \(topic)-\(partition) is closed") }
            for segment in s.segments { segment.closeFiles() }
            let point = try Self.readRecoveryPoint(recoveryPointPath, io: files.io)
            let now = clock()
            (s.segments, s.unsyncedSegments) = try Self.loadSegments(directory, config: s.config, files: files, cleanShutdown: false,
                                                                     recoveryPoint: point, now: now)
            s.directoryNeedsSync = true
            s.durableOffset = min(s.segments.last!.nextOffset, point)
            s.failure = nil
            s.messagesSinceFlush = 0
            s.lastFlushMillis = now
            return s.segments
        }
        try flush()
        observer.partitionOpened(Self.report(topic, partition, segments, clean: false, since: startNanos))
    }

    /// Flushes everything and makes every file the clean-shutdown marker vouches for
    /// durable, one by one: logs, index files, the directory, the recovery point. Then
    /// closes the files. Idempotent. Throws if anything could not be made durable (and
    /// then no clean-shutdown marker may be written).
    public func close() throws {
        let alreadyClosed = state.withLock { s -> Bool in
            if s.closed { return true }
            return false
        }
        if alreadyClosed { return }
        var firstError: Error?
        if failure == nil {
            do {
                try checkpointHighWatermark()
                try flush()
                // Indexes of every segment (the active one's live in memory until now).
                let written = try state.withLock { s -> [LogSegment] in
                    var written: [LogSegment] = []
                    for segment in s.segments where segment.indexesDirty || segment.indexesNeedSync || segment.txnIndexDirty {
                        let indexesWritten = segment.indexesDirty || segment.indexesNeedSync
                        try segment.writeIndexes()
                        if indexesWritten && segment.indexesNeedSync { written.append(segment) }
                        segment.indexesNeedSync = false
                    }
                    return written
                }
                for segment in written { try segment.syncIndexes() }
                let txnWritten = state.withLock { s in
                    s.segments.filter(\.txnIndexNeedsSync).map { segment in
                        segment.txnIndexNeedsSync = false
                        return segment
                    }
                }
                for segment in txnWritten { try segment.syncTxnIndex() }
                if !written.isEmpty { try files.io.syncDirectory(directory) }
                try moveRecoveryPoint(to: state.withLock { $0.segments.last!.baseOffset })
            } catch let error as DataStateUnknown {
                firstError = state.withLock { stop(&$0, .fsync, error.cause, now: clock()) }
            } catch {
                firstError = error
            }
        } else {
            firstError = failure
        }
        state.withLock { s in
            s.closed = true
            for segment in s.segments { segment.closeFiles() }
        }
        files.forget(recoveryPointPath)
        if let firstError { throw firstError }
    }

    /// Closes the log for good and removes its directory. Writes nothing (the directory
    /// is renamed aside, then removed), so it frees space on a full disk. Late calls on
    /// this handle fail with `.closed`.
    public func delete() throws {
        state.withLock { s in
            s.closed = true
            for segment in s.segments { segment.closeFiles() }
        }
        files.forget(recoveryPointPath)
        committer.withLock { c in
            for w in c.waiters { w.continuation.resume(throwing: StorageError(.closed, "partition deleted")) }
            c.waiters.removeAll()
        }
        let io = files.io
        let doomed = directory + ".deleted"
        if (try? Directory.rename(directory, doomed, io: io)) != nil {
            try Directory.removeTree(doomed, io: io)
        } else {
            try Directory.removeTree(directory, io: io)
        }
    }
}

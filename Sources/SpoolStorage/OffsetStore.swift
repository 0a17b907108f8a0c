#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SpoolRecords
import Synchronization

/// A committed consumer position.
public struct CommittedOffset: Hashable, Sendable {
    public var offset: Int64
    public var metadata: String
    public var commitTimestamp: Int64

    public init(offset: Int64, metadata: String = "", commitTimestamp: Int64) {
        self.offset = offset
        self.metadata = metadata
        self.commitTimestamp = commitTimestamp
    }
}

/// Committed offsets per consumer group and partition, kept in an append-only log
/// (`consumer-offsets.log`, see `OffsetLogRecord`) as Kafka keeps `__consumer_offsets`.
///
/// A commit appends one framed record; when it returns depends on the ``OffsetFlushPolicy``:
///
/// - `.interval(millis:)` (the broker's default, Kafka's semantics): once the record is
///   written (page cache), so it survives the process dying; one fsync within `millis`
///   covers every commit written before it. ``committed(group:)`` shows a commit once answered.
/// - `.everyCommit`: once an fsync covers it. Commits that arrive together share one fsync
///   (group commit): the first caller to find no fsync running does it for everyone
///   appended so far, the others wait for it, so the rate is bounded by fsyncs per second
///   times commits per fsync, not by the table's size. ``committed(group:)`` shows only
///   durable commits.
///
/// The log is compacted when it passes `compactionMinBytes` and twice its size after the
/// last compaction (and at open): the live table is written to a new file, fsynced and
/// renamed over the log; records appended meanwhile are carried over. A crash at any
/// point leaves the old or the new log, each holding every durable commit.
///
/// A failed write fails that call (the torn tail is cut off); a failed fsync stops the
/// store (every later call fails) until the process restarts and re-reads the log.
public final class OffsetStore: Sendable {
    public static let fileName = "consumer-offsets.log"
    /// The whole-table file of earlier versions, read once and converted into the log.
    public static let legacyFileName = "consumer-offsets.meta"
    static let legacyHeader = "spool-offsets v1"
    public static let maxGroupNameBytes = 255
    public static let maxMetadataBytes = 4096
    /// Partitions in one commit call (it becomes one record).
    public static let maxPartitionsPerCommit = 100_000
    /// Default for `compactionMinBytes`.
    public static let defaultCompactionMinBytes: Int64 = 4 << 20

    let path: String
    let directory: String
    let io: FileIO
    /// The log is not compacted below this size.
    public let compactionMinBytes: Int64
    let executor: StorageExecutor
    /// When commits are answered, relative to their fsync.
    public let flushPolicy: OffsetFlushPolicy
    /// Runs the policy's deferred fsync round after a delay in milliseconds.
    let flushTimer: FlushTimer
    let observer: any StorageObserver

    /// Runs `work` once, on any thread, `afterMillis` from now.
    public typealias FlushTimer = @Sendable (_ afterMillis: Int64, _ work: @escaping @Sendable () -> Void) -> Void
    public static let dispatchFlushTimer: FlushTimer = { millis, work in
        DispatchQueue.global(qos: .userInitiated).asyncAfter(deadline: .now() + .milliseconds(Int(millis)), execute: work)
    }

    struct State {
        /// What is durable: the table readers see.
        var table: [String: [TopicPartition: CommittedOffset]]
        var fd: Int32
        /// Where the next record goes.
        var logBytes: Int64
        /// End of the last durable record.
        var durableBytes: Int64
        /// Log size right after the last compaction.
        var compactedBytes: Int64
        var appendedSeq: UInt64 = 0
        var durableSeq: UInt64 = 0
        /// Appended, not yet durable: applied to `table` by the fsync that covers them
        /// (`.everyCommit` only: under `.interval` a record is in `table` once written).
        var pending: [(seq: UInt64, end: Int64, record: OffsetLogRecord)] = []
        /// `.interval`: a deferred fsync round is scheduled.
        var flushScheduled = false
        /// `close()` is flushing: no more appends.
        var closing = false
        /// An fsync (or a compaction) is running; its caller wakes `waiters` when done.
        var syncing = false
        var waiters: [DispatchSemaphore] = []
        /// Callers that do not block, waiting for an fsync to cover their record.
        var callbacks: [(seq: UInt64, completion: @Sendable (Result<Void, StorageError>) -> Void)] = []
        var failure: StorageError?
        var closed = false
    }

    private let state: Mutex<State>

    /// Opens (creating, or converting the legacy table into) the log in `dataDirectory`.
    /// `executor` runs the fsync rounds of async commits, `flushTimer` the deferred ones of
    /// `.interval(millis:)`; `observer` hears of every fsync round.
    public init(dataDirectory: String, io: FileIO = PosixFileIO(), compactionMinBytes: Int64 = OffsetStore.defaultCompactionMinBytes,
                flushPolicy: OffsetFlushPolicy = .everyCommit,
                executor: @escaping StorageExecutor = PartitionLog.globalExecutor,
                flushTimer: @escaping FlushTimer = OffsetStore.dispatchFlushTimer,
                observer: any StorageObserver = NoStorageObserver()) throws {
        self.executor = executor
        self.flushPolicy = flushPolicy
        self.flushTimer = flushTimer
        self.observer = observer
        self.directory = dataDirectory
        self.path = dataDirectory + "/" + Self.fileName
        self.io = io
        self.compactionMinBytes = compactionMinBytes
        let legacyPath = dataDirectory + "/" + Self.legacyFileName
        try? io.removeFile(path + ".tmp")
        if !Directory.fileExists(path, io: io), let legacy = try Self.readLegacy(legacyPath, io: io) {
            // One-time conversion: the new log holds the whole table before the old file goes.
            try Directory.writeAtomically(Self.snapshot(legacy), to: path, io: io)
        }
        if Directory.fileExists(legacyPath, io: io) {
            try io.removeFile(legacyPath)
            try io.syncDirectory(dataDirectory)
        }
        let created = !Directory.fileExists(path, io: io)
        let fd = try io.open(path, flags: O_RDWR | O_CREAT, mode: 0o644)
        let loaded: (table: [String: [TopicPartition: CommittedOffset]], bytes: Int64, records: Int)
        do {
            if created { try io.syncDirectory(dataDirectory) }
            let size = try io.size(fd)
            var bytes = [UInt8](repeating: 0, count: Int(size))
            let n = try bytes.withUnsafeMutableBytes { try io.pread(fd, into: $0, at: 0) }
            var table: [String: [TopicPartition: CommittedOffset]] = [:]
            var position = 0
            var records = 0
            while let (record, next) = OffsetLogRecord.decode(bytes, at: position), next <= n {
                record.apply(to: &table)
                position = next
                records += 1
            }
            if position < Int(size) {
                // A torn or damaged tail: records after it were never synced (an fsync covers
                // everything before it). Cut it, so that new records follow whole ones.
                try io.truncate(fd, to: Int64(position))
                try io.fsync(fd)
            }
            loaded = (table, Int64(position), records)
        } catch {
            io.close(fd)
            throw error
        }
        state = Mutex(State(table: loaded.table, fd: fd, logBytes: loaded.bytes, durableBytes: loaded.bytes,
                            compactedBytes: loaded.bytes))
        // Many more records than groups: start from a compact log.
        if loaded.bytes >= compactionMinBytes && loaded.records > 2 * max(1, loaded.table.count) {
            do {
                try compact()
            } catch {
                close()
                throw error
            }
        }
    }

    private static func readLegacy(_ path: String, io: FileIO) throws -> [String: [TopicPartition: CommittedOffset]]? {
        guard let lines = try MetadataFile.readLines(path, header: legacyHeader, io: io) else { return nil }
        var loaded: [String: [TopicPartition: CommittedOffset]] = [:]
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6, let partition = Int32(f[2]), let offset = Int64(f[3]), let ts = Int64(f[4]),
                  let group = Self.unescape(f[0]), let metadata = Self.unescape(f[5]) else {
                throw StorageError(.corrupt, "\(path): bad line '\(line)'")
            }
            loaded[group, default: [:]][TopicPartition(f[1], partition)] = CommittedOffset(offset: offset, metadata: metadata, commitTimestamp: ts)
        }
        return loaded
    }

    /// The table as log records, one per group.
    static func snapshot(_ table: [String: [TopicPartition: CommittedOffset]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for group in table.keys.sorted() {
            bytes += OffsetLogRecord.commit(group: group, offsets: table[group]!).framed()
        }
        return bytes
    }

    // MARK: API

    /// Stores `offsets` for `group`, all or none; durable on return as the flush policy
    /// says. Under `.everyCommit` it blocks the calling thread until an fsync covers the
    /// commit (possibly running that fsync itself).
    public func commit(group: String, _ offsets: [TopicPartition: CommittedOffset]) throws {
        try Self.validate(group: group, offsets)
        let seq = try append(.commit(group: group, offsets: offsets))
        if case .interval(let millis) = flushPolicy {
            scheduleFlush(afterMillis: millis)
        } else {
            try waitUntilDurable(seq)
        }
    }

    /// Stores `offsets` for `group`, all or none; returns once durable, without holding a
    /// thread meanwhile: any number of commits can wait for the same fsync, which runs on
    /// the store's executor. What a request handler should call.
    public func commit(group: String, offsets: [TopicPartition: CommittedOffset]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            commit(group: group, offsets) { continuation.resume(with: $0.mapError { $0 as Error }) }
        }
    }

    /// Stores `offsets` for `group`, all or none, and calls `completion` once the commit is
    /// durable as the flush policy says (or failed): under `.interval`, once written, on
    /// the caller's thread; under `.everyCommit`, on the store's executor once an fsync
    /// covers it (an invalid or unwritable commit fails at once on the caller's thread).
    /// Never waits for an fsync: what an event loop or a serial queue should call, so that
    /// commits from many callers share one fsync.
    public func commit(group: String, _ offsets: [TopicPartition: CommittedOffset],
                       completion: @escaping @Sendable (Result<Void, StorageError>) -> Void) {
        let seq: UInt64
        do {
            try Self.validate(group: group, offsets)
            seq = try append(.commit(group: group, offsets: offsets))
        } catch let error as StorageError {
            return completion(.failure(error))
        } catch {
            return completion(.failure(StorageError(.io, "\(error)")))
        }
        if case .interval(let millis) = flushPolicy {
            scheduleFlush(afterMillis: millis)
            return completion(.success(()))
        }
        let (lead, now) = state.withLock { s -> (Bool, Result<Void, StorageError>?) in
            if s.durableSeq >= seq { return (false, .success(())) }
            if let failure = s.failure { return (false, .failure(failure)) }
            // Closed meanwhile: its descriptor is gone, nobody may fsync it.
            if s.closed { return (false, .failure(StorageError(.closed, "committed offsets are closed"))) }
            s.callbacks.append((seq, completion))
            if s.syncing { return (false, nil) }
            s.syncing = true
            return (true, nil)
        }
        if let now { completion(now) }
        if lead { executor { self.leadOneRound() } }
    }

    private static func validate(group: String, _ offsets: [TopicPartition: CommittedOffset]) throws {
        try validate(group: group)
        guard offsets.count <= Self.maxPartitionsPerCommit else {
            throw StorageError(.invalidConfig, "a commit may name at most \(Self.maxPartitionsPerCommit) partitions")
        }
        for (tp, committed) in offsets {
            guard committed.offset >= 0 else {
                throw StorageError(.offsetOutOfRange, "cannot commit negative offset \(committed.offset) for \(tp)")
            }
            guard committed.metadata.utf8.count <= Self.maxMetadataBytes else {
                throw StorageError(.invalidConfig, "commit metadata over \(Self.maxMetadataBytes) bytes")
            }
            guard tp.topic.utf8.count <= TopicName.maxLength else {
                throw StorageError(.invalidTopicName, "topic name over \(TopicName.maxLength) bytes")
            }
        }
    }

    /// The durable committed offsets of `group`.
    public func committed(group: String) -> [TopicPartition: CommittedOffset] {
        state.withLock { $0.table[group] ?? [:] }
    }

    /// Groups with committed offsets, sorted.
    public var groups: [String] {
        state.withLock { Array($0.table.keys) }.sorted()
    }

    /// Forgets a topic's offsets in every group (when the topic is deleted); durable on return.
    public func removeTopic(_ topic: String) throws {
        let needed = state.withLock { s in
            s.table.values.contains { $0.keys.contains { $0.topic == topic } } || !s.pending.isEmpty
        }
        if needed { try waitUntilDurable(try append(.removeTopic(topic))) }
    }

    /// Forgets every committed offset of `group`; durable on return.
    public func removeGroup(_ group: String) throws {
        try Self.validate(group: group)
        let needed = state.withLock { $0.table[group] != nil || !$0.pending.isEmpty }
        if needed { try waitUntilDurable(try append(.removeGroup(group))) }
    }

    /// Forgets `group`'s committed offsets of `partitions` (OffsetDelete); durable on return.
    public func removeOffsets(group: String, _ partitions: [TopicPartition]) throws {
        try Self.validate(group: group)
        guard !partitions.isEmpty else { return }
        let needed = state.withLock { s in
            partitions.contains { s.table[group]?[$0] != nil } || !s.pending.isEmpty
        }
        if needed { try waitUntilDurable(try append(.removeOffsets(group: group, partitions: partitions))) }
    }

    /// Makes every commit written so far durable (one fsync round); what `.interval` defers.
    public func flush() throws {
        let target = state.withLock { s -> UInt64? in s.durableSeq < s.appendedSeq ? s.appendedSeq : nil }
        if let target { try waitUntilDurable(target) }
    }

    /// Closes the log file, after an fsync of the commits the flush policy had not fsynced
    /// yet (best effort; call ``flush()`` first to learn of a failure).
    public func close() {
        let flushing = state.withLock { s -> Bool in
            guard !s.closed && !s.closing else { return false }
            s.closing = true
            return true
        }
        guard flushing else { return }
        try? flush()
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            if !s.syncing {
                io.close(s.fd)
                s.fd = -1
            }
        }
    }

    private static func validate(group: String) throws {
        guard !group.isEmpty, group.utf8.count <= Self.maxGroupNameBytes else {
            throw StorageError(.invalidConfig, "group id must be 1 to \(Self.maxGroupNameBytes) bytes")
        }
    }

    // MARK: Log

    /// Appends `record` (page cache only) and returns its sequence number, for
    /// `waitUntilDurable`.
    private func append(_ record: OffsetLogRecord) throws -> UInt64 {
        let bytes = record.framed()
        let seq = try state.withLock { s -> UInt64 in
            if s.closed || s.closing { throw StorageError(.closed, "committed offsets are closed") }
            if let failure = s.failure { throw failure }
            let position = s.logBytes
            do {
                try bytes.withUnsafeBytes { try io.pwrite(s.fd, $0, at: position) }
            } catch let error as StorageError {
                // Cut whatever part of the record landed, so that later records follow whole
                // ones; only if even that fails is the log's state unknown.
                do {
                    try io.truncate(s.fd, to: position)
                } catch {
                    s.failure = StorageError(.logFailed, "committed offsets stopped after a failed write: \(error)")
                }
                throw error
            }
            s.logBytes += Int64(bytes.count)
            s.appendedSeq += 1
            if case .interval = flushPolicy {
                // Answered once written: readers see it now (it survives the process; the
                // deferred fsync makes it survive a power loss).
                record.apply(to: &s.table)
            } else {
                s.pending.append((s.appendedSeq, s.logBytes, record))
            }
            return s.appendedSeq
        }
        return seq
    }

    /// `.interval`: makes sure one fsync round runs `millis` from now (at most one is
    /// scheduled at a time; it covers every commit written before it starts).
    private func scheduleFlush(afterMillis millis: Int64) {
        let schedule = state.withLock { s -> Bool in
            guard !s.flushScheduled else { return false }
            s.flushScheduled = true
            return true
        }
        if schedule { flushTimer(millis) { self.runScheduledFlush() } }
    }

    private func runScheduledFlush() {
        let lead = state.withLock { s -> Bool in
            s.flushScheduled = false
            guard s.failure == nil, !s.closed, s.durableSeq < s.appendedSeq else { return false }
            // A round in progress may have started before the newest records: it goes
            // again (on the executor) while a callback waits.
            s.callbacks.append((s.appendedSeq, { _ in }))
            if s.syncing { return false }
            s.syncing = true
            return true
        }
        if lead { leadOneRound() }
    }

    private enum Step {
        case done
        case fail(StorageError)
        case lead
        case wait(DispatchSemaphore)
    }

    private func waitUntilDurable(_ seq: UInt64) throws {
        while true {
            let step = state.withLock { s -> Step in
                if s.durableSeq >= seq { return .done }
                if let failure = s.failure { return .fail(failure) }
                if s.closed { return .fail(StorageError(.closed, "committed offsets are closed")) }
                if !s.syncing {
                    s.syncing = true
                    return .lead
                }
                let semaphore = DispatchSemaphore(value: 0)
                s.waiters.append(semaphore)
                return .wait(semaphore)
            }
            switch step {
            case .done: return
            case .fail(let failure): throw failure
            case .wait(let semaphore): semaphore.wait()
            case .lead: leadOneRound()
            }
        }
    }

    /// One group-commit round, run by the caller that found no fsync running (or on the
    /// executor for async callers): compact if due, fsync everything appended so far,
    /// publish it, wake the waiters; go again on the executor while async callers wait.
    private func leadOneRound() {
        var failure: StorageError?
        if needsCompaction() {
            do { try compact() } catch let error as StorageError { failure = error } catch { failure = StorageError(.io, "\(error)") }
        }
        let (fd, target, end, fromSeq) = state.withLock { ($0.fd, $0.appendedSeq, $0.logBytes, $0.durableSeq) }
        if failure == nil {
            let started = monotonicNanos()
            defer { observer.offsetsFsyncCompleted(durationNanos: monotonicNanos() - started, commits: Int(target - fromSeq)) }
            do { try io.fsync(fd) } catch let error as StorageError { failure = error } catch { failure = StorageError(.io, "\(error)") }
        }
        let (waiters, ready, again) = state.withLock { s -> ([DispatchSemaphore], [(@Sendable (Result<Void, StorageError>) -> Void, Result<Void, StorageError>)], Bool) in
            if let failure {
                // Never retried: the kernel may have dropped the pages (see PartitionLog).
                s.failure = s.failure ?? StorageError(.logFailed, "committed offsets stopped after a failed fsync: \(failure.message)",
                                                      errno: failure.errno)
            } else {
                let covered = s.pending.prefix { $0.seq <= target }
                for entry in covered { entry.record.apply(to: &s.table) }
                s.pending.removeFirst(covered.count)
                s.durableSeq = target
                s.durableBytes = end
            }
            var ready: [(@Sendable (Result<Void, StorageError>) -> Void, Result<Void, StorageError>)] = []
            let stopped = s.failure ?? (s.closed ? StorageError(.closed, "committed offsets are closed") : nil)
            s.callbacks.removeAll { waiter in
                if let stopped {
                    ready.append((waiter.completion, .failure(stopped)))
                    return true
                }
                guard waiter.seq <= s.durableSeq else { return false }
                ready.append((waiter.completion, .success(())))
                return true
            }
            let again = !s.callbacks.isEmpty
            s.syncing = again
            if s.closed && !again && s.fd >= 0 {
                io.close(s.fd)
                s.fd = -1
            }
            defer { s.waiters.removeAll() }
            return (s.waiters, ready, again)
        }
        for w in waiters { w.signal() }
        for (completion, result) in ready { completion(result) }
        if again { executor { self.leadOneRound() } }
    }

    private func needsCompaction() -> Bool {
        state.withLock { s in s.logBytes >= compactionMinBytes && s.logBytes >= 2 * s.compactedBytes }
    }

    /// Rewrites the log as one record per group (called with `syncing` held, or at open):
    /// snapshot of the durable table → temporary file, fsync, rename over the log; then,
    /// under the lock, the records appended since the snapshot are copied over and the
    /// descriptor swapped; then the directory is fsynced. A crash before the directory
    /// fsync leaves the old or the new log: both hold every durable commit.
    private func compact() throws {
        // The table reflects the log up to `durableBytes` (`.everyCommit`) or to its end
        // (`.interval`, where a record is in the table once written).
        let (table, from) = state.withLock { s -> ([String: [TopicPartition: CommittedOffset]], Int64) in
            if case .interval = flushPolicy { return (s.table, s.logBytes) }
            return (s.table, s.durableBytes)
        }
        let snapshot = Self.snapshot(table)
        let temp = path + ".tmp"
        let fd = try io.open(temp, flags: O_RDWR | O_CREAT | O_TRUNC, mode: 0o644)
        do {
            try snapshot.withUnsafeBytes { try io.pwrite(fd, $0, at: 0) }
            try io.fsync(fd)
            try io.rename(temp, to: path)
        } catch {
            // Not compacted; nothing lost. The old log goes on (and the next round tries again).
            io.close(fd)
            try? io.removeFile(temp)
            observer.offsetsCompactionFailed(error: error as? StorageError ?? StorageError(.io, "\(error)"), stopped: false)
            return
        }
        // From here the log's name points at the new file: it must get the tail.
        do {
            try state.withLock { s in
                let tailBytes = Int(s.logBytes - from)
                var tail = [UInt8](repeating: 0, count: tailBytes)
                if tailBytes > 0 {
                    let n = try tail.withUnsafeMutableBytes { try io.pread(s.fd, into: $0, at: from) }
                    guard n == tailBytes else { throw StorageError(.io, "short read of \(path) while compacting") }
                    try tail.withUnsafeBytes { try io.pwrite(fd, $0, at: Int64(snapshot.count)) }
                }
                let shift = Int64(snapshot.count) - from
                for i in s.pending.indices { s.pending[i].end += shift }
                io.close(s.fd)
                s.fd = fd
                s.logBytes += shift
                s.durableBytes = Int64(snapshot.count)
                s.compactedBytes = Int64(snapshot.count)
            }
            try io.syncDirectory(directory)
        } catch let error as StorageError {
            let failure = StorageError(.logFailed, "committed offsets stopped: compaction failed after the rename: \(error.message)")
            state.withLock { $0.failure = failure }
            observer.offsetsCompactionFailed(error: failure, stopped: true)
            throw failure
        }
        observer.offsetsCompacted(bytes: Int64(snapshot.count))
    }

    /// Undoes the percent-escaping (of tab, newline, CR and percent) of the legacy table.
    static func unescape(_ s: String) -> String? {
        guard s.contains("%") else { return s }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.first {
            it = it.dropFirst()
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

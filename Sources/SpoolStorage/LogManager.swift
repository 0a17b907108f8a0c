#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SpoolRecords
import Synchronization

/// Settings of the storage layer as a whole.
public struct StorageConfig: Sendable {
    /// Where topics, partitions and committed offsets live.
    public var dataDirectory: String
    /// Topic settings used where a topic has no override.
    public var topicDefaults = TopicConfig()
    /// Upper bound on open segment and index files over all partitions.
    public var maxOpenFiles = 1024
    /// How often retention runs (Kafka's `log.retention.check.interval.ms`).
    public var retentionCheckIntervalMillis: Int64 = 300_000
    /// How often the `flush.ms` policy is checked.
    public var flushCheckIntervalMillis: Int64 = 1000
    /// When an OffsetCommit is answered relative to its fsync (`offsets.flush.ms`). The
    /// storage layer's default is the power-loss-safe one; the broker's (`BrokerConfig`)
    /// is `OffsetFlushPolicy.default`, Kafka's semantics.
    public var offsetsFlush = OffsetFlushPolicy.everyCommit
    /// Partitions closed at once at shutdown, each fsyncing its own files: thousands of
    /// busy partitions would otherwise wait for each other's fsyncs one by one.
    public var closeConcurrency = 16
    /// The committed-offsets log is not compacted below this size (`OffsetStore.compactionMinBytes`).
    public var offsetsCompactionMinBytes = OffsetStore.defaultCompactionMinBytes
    /// The log cleaner of compacted topics (`log.cleaner.*`).
    public var cleaner = LogCleanerConfig()

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }
}

/// The storage layer's front door: topics, their partition logs, committed
/// offsets, and the background work (retention, time-based flushes).
///
/// Opening takes an exclusive lock on the data directory, so two brokers can
/// never share it. A clean ``close()`` leaves a marker, written only after every
/// file it vouches for was fsynced; without it, the next open re-validates the
/// tail of every partition. Every file operation goes through the `FileIO` given.
public final class LogManager: Sendable {
    public static let cleanShutdownMarker = ".clean-shutdown"
    public static let lockFileName = ".lock"

    public let config: StorageConfig
    public let topics: TopicStore
    public let offsets: OffsetStore
    public let files: FileDescriptorCache
    /// Told about fsyncs, recoveries, retention deletions and stopped partitions.
    public let observer: any StorageObserver
    public let io: FileIO
    /// True when the previous run stopped cleanly (no recovery scan was needed).
    public let openedClean: Bool
    let logs: Mutex<[TopicPartition: PartitionLog]>
    private let lockFD: Int32
    let executor: StorageExecutor
    let clock: @Sendable () -> Int64
    private let timer: Mutex<TimerBox?> = Mutex(nil)
    private let closed = Atomic<Bool>(false)

    /// Opens the data directory. `executor` runs background fsyncs and `clock` tells the
    /// partitions the time (tests pass their own); `observer` hears storage events.
    public init(config: StorageConfig, io: FileIO = PosixFileIO(), executor: @escaping StorageExecutor = PartitionLog.globalExecutor,
                clock: @escaping @Sendable () -> Int64 = PartitionLog.wallClockMillis,
                observer: any StorageObserver = NoStorageObserver()) throws {
        self.config = config
        self.observer = observer
        self.io = io
        self.executor = executor
        self.clock = clock
        let dir = config.dataDirectory
        try Directory.create(dir, io: io)
        lockFD = try io.open(dir + "/" + Self.lockFileName, flags: O_RDWR | O_CREAT, mode: 0o644)
        guard try io.lockExclusive(lockFD) else {
            io.close(lockFD)
            throw StorageError(.io, "data directory \(dir) is in use by another Spool process")
        }
        do {
            files = FileDescriptorCache(capacity: config.maxOpenFiles, io: io)
            topics = try TopicStore(dataDirectory: dir, io: io)
            offsets = try OffsetStore(dataDirectory: dir, io: io, compactionMinBytes: config.offsetsCompactionMinBytes,
                                      flushPolicy: config.offsetsFlush, executor: executor, observer: observer)
            let marker = dir + "/" + Self.cleanShutdownMarker
            // A directory without topics has nothing to recover: it counts as clean.
            openedClean = Directory.fileExists(marker, io: io) || topics.all.isEmpty
            // Directories of deleted topics whose removal was interrupted, and stray partition
            // directories no topic owns (a delete cut short after its definition went, or
            // partitions added but never recorded): their data must never come back.
            let owned = Dictionary(uniqueKeysWithValues: topics.all.map { ($0.name, $0.partitions) })
            for name in try Directory.list(dir, io: io) {
                let path = dir + "/" + name
                if name.hasSuffix(".deleted") {
                    try Directory.removeTree(path, io: io)
                } else if let dash = name.lastIndex(of: "-"), let p = Int32(name[name.index(after: dash)...]),
                          (try? TopicName.validate(String(name[..<dash]))) != nil, Directory.exists(path, io: io),
                          p >= owned[String(name[..<dash]), default: 0] {
                    try Directory.removeTree(path, io: io)
                }
            }
            var opened: [TopicPartition: PartitionLog] = [:]
            for topic in topics.all {
                let topicConfig = try TopicConfig(topic.overrides, base: config.topicDefaults)
                for p in 0..<topic.partitions {
                    let tp = TopicPartition(topic.name, p)
                    opened[tp] = try PartitionLog(directory: Self.directory(dir, tp), topic: topic.name, partition: p,
                                                  config: topicConfig, files: files, cleanShutdown: openedClean, clock: clock, executor: executor, observer: observer)
                }
            }
            logs = Mutex(opened)
            // The marker vouches for one clean stop only: gone before anything is written.
            try Directory.removeFile(marker, io: io)
            try Directory.sync(dir, io: io)
        } catch {
            io.close(lockFD)
            throw error
        }
    }

    static func directory(_ dataDirectory: String, _ tp: TopicPartition) -> String {
        dataDirectory + "/" + tp.topic + "-" + String(tp.partition)
    }

    // MARK: Topics

    /// Creates a topic with `partitions` partitions and config `overrides`.
    ///
    /// The definition is persisted first; the partition directories are then created
    /// without holding any lock that produce or fetch take (10,000 partitions take a
    /// while), and the partitions appear together once all exist. If creating them
    /// fails, the topic is removed again.
    @discardableResult
    public func createTopic(_ name: String, partitions: Int32, overrides: [String: String] = [:]) throws -> TopicDefinition {
        try checkOpen()
        let topicConfig = try TopicConfig(overrides, base: config.topicDefaults)
        let definition = TopicDefinition(name: name, partitions: partitions, overrides: overrides)
        try topics.create(definition)
        var created: [TopicPartition: PartitionLog] = [:]
        do {
            for p in 0..<partitions {
                let tp = TopicPartition(name, p)
                // A directory already there is stray data of a topic of the same name whose
                // delete was cut short (the definition went first): never let it come back.
                let directory = Self.directory(config.dataDirectory, tp)
                if Directory.exists(directory, io: io) { try Directory.removeTree(directory, io: io) }
                created[tp] = try PartitionLog(directory: Self.directory(config.dataDirectory, tp), topic: name, partition: p,
                                               config: topicConfig, files: files, cleanShutdown: true, clock: clock, executor: executor, observer: observer)
            }
            // The partition directories' names. Each partition fsyncs its own directory
            // (its first segment file) with its first flush, before anything is acknowledged.
            try Directory.sync(config.dataDirectory, io: io)
        } catch {
            for log in created.values { try? log.delete() }
            _ = try? topics.delete(name)
            throw error
        }
        logs.withLock { logs in logs.merge(created) { _, new in new } }
        return definition
    }

    /// Deletes a topic: its partitions' data, its definition, its committed offsets.
    ///
    /// Works on a full disk: when the definition cannot be rewritten (ENOSPC), the data
    /// is removed first (which writes nothing and frees space), then the definition is
    /// rewritten. Should the process stop in between, the topic comes back empty at the
    /// next start (the delete was not acknowledged; run it again).
    public func deleteTopic(_ name: String) throws {
        try checkOpen()
        guard let definition = topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        var definitionRemoved = true
        do {
            try topics.delete(name)
        } catch let error as StorageError where error.code == .io {
            definitionRemoved = false
        }
        let removed = logs.withLock { logs -> [PartitionLog] in
            (0..<definition.partitions).compactMap { logs.removeValue(forKey: TopicPartition(name, $0)) }
        }
        var firstError: Error?
        for log in removed {
            do { try log.delete() } catch { firstError = firstError ?? error }
        }
        if !definitionRemoved { try topics.delete(name) }
        try Directory.sync(config.dataDirectory, io: io)
        do {
            try offsets.removeTopic(name)
        } catch let error as StorageError {
            // The topic is gone; only its committed offsets stay (a consumer of a topic
            // re-created under the name finds them outside the log and resets).
            throw StorageError(error.code, "topic \(name) was deleted, but its committed offsets could not be removed: \(error.message)",
                               errno: error.errno)
        }
        if let firstError { throw firstError }
    }

    /// Brings a topic's stopped partitions back without a restart: each is re-opened and
    /// re-checked as an unclean start would (`PartitionLog.recover()`). Returns the
    /// partitions that were stopped and run again. Throws the first failure (the others
    /// are still tried).
    @discardableResult
    public func recover(topic: String) throws -> [Int32] {
        try checkOpen()
        var recovered: [Int32] = []
        var firstError: Error?
        for log in try partitions(of: topic) where log.failure != nil {
            do {
                try log.recover()
                recovered.append(log.partition)
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        return recovered
    }

    /// Changes a topic's config overrides (merged into the existing ones).
    public func alterTopic(_ name: String, set overrides: [String: String]) throws -> TopicConfig {
        guard var definition = topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        definition.overrides.merge(overrides) { _, new in new }
        let topicConfig = try TopicConfig(definition.overrides, base: config.topicDefaults)
        try topics.update(definition)
        for log in try partitions(of: name) { log.update(config: topicConfig) }
        return topicConfig
    }

    /// The effective config of a topic.
    public func topicConfig(_ name: String) throws -> TopicConfig {
        guard let definition = topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        return try TopicConfig(definition.overrides, base: config.topicDefaults)
    }

    /// The log of one partition.
    public func partition(_ tp: TopicPartition) throws -> PartitionLog {
        if let log = logs.withLock({ $0[tp] }) { return log }
        guard let definition = topics.get(tp.topic) else {
            throw StorageError(.unknownTopic, "topic \(tp.topic) does not exist")
        }
        throw StorageError(.unknownPartition, "topic \(tp.topic) has partitions 0..<\(definition.partitions), not \(tp.partition)")
    }

    /// All partition logs of a topic, in partition order.
    public func partitions(of topic: String) throws -> [PartitionLog] {
        guard let definition = topics.get(topic) else { throw StorageError(.unknownTopic, "topic \(topic) does not exist") }
        return try (0..<definition.partitions).map { try partition(TopicPartition(topic, $0)) }
    }

    // MARK: Background work

    /// Applies retention to every partition now (and the flush.ms policy). Returns segments deleted.
    @discardableResult
    public func runRetention(now: Int64 = PartitionLog.wallClockMillis()) -> Int {
        let all = logs.withLock { Array($0.values) }
        var deleted = 0
        var failures = 0
        for log in all {
            do {
                deleted += try log.applyRetention(now: now)
            } catch {
                // The next run tries again; the observer logs, counts and tells when it persists.
                failures += 1
                observer.retentionFailed(TopicPartition(log.topic, log.partition),
                                         error: error as? StorageError ?? StorageError(.io, "\(error)"))
            }
        }
        observer.retentionRunCompleted(failures: failures)
        return deleted
    }

    /// Starts the periodic flush.ms checks and retention runs on a background queue.
    public func startBackgroundWork() {
        let queue = DispatchQueue(label: "spool.storage.maintenance")
        let source = DispatchSource.makeTimerSource(queue: queue)
        let tick = max(10, config.flushCheckIntervalMillis)
        let retentionEvery = max(1, config.retentionCheckIntervalMillis / tick)
        let counter = Atomic<Int64>(0)
        source.schedule(deadline: .now() + .milliseconds(Int(tick)), repeating: .milliseconds(Int(tick)))
        source.setEventHandler { [self] in
            let now = PartitionLog.wallClockMillis()
            for log in logs.withLock({ Array($0.values) }) { log.flushIfDue(now: now) }
            if counter.add(1, ordering: .relaxed).newValue % retentionEvery == 0 {
                runRetention(now: now)
            }
        }
        source.resume()
        timer.withLock { $0 = TimerBox(source: source) }
    }

    private func checkOpen() throws {
        if closed.load(ordering: .acquiring) { throw StorageError(.closed, "storage is closed") }
    }

    /// Closes every partition, each making its own files durable one by one (log,
    /// indexes, directory, recovery point: an idle partition costs nothing), then leaves
    /// the clean-shutdown marker. `syncfs` is not used: some file systems ignore it.
    /// If any partition failed or could not be made durable, no marker is written, so
    /// the next start recovers.
    public func close() throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        timer.withLock { $0?.source.cancel(); $0 = nil }
        var firstError: Error?
        firstError = Self.closeAll(logs.withLock { Array($0.values) }, concurrency: config.closeConcurrency)
        // Commits answered before their fsync (offsets.flush.ms) get it before the marker.
        do { try offsets.flush() } catch { firstError = firstError ?? error }
        offsets.close()
        files.closeAll()
        if firstError == nil {
            do {
                try Directory.sync(config.dataDirectory, io: io)
                try Directory.writeAtomically([], to: config.dataDirectory + "/" + Self.cleanShutdownMarker, io: io)
            } catch {
                firstError = error
            }
        }
        io.close(lockFD)
        if let firstError { throw firstError }
    }
}

extension LogManager {
    /// Closes `logs` on up to `concurrency` threads (in order, on this one, when it is 1);
    /// returns the first error.
    static func closeAll(_ logs: [PartitionLog], concurrency: Int) -> Error? {
        let work = CloseQueue(logs)
        let workers = max(1, min(concurrency, logs.count))
        if workers == 1 {
            work.drain()
        } else {
            let group = DispatchGroup()
            let queue = DispatchQueue(label: "spool.storage.close", attributes: .concurrent)
            for _ in 0..<workers {
                queue.async(group: group) { work.drain() }
            }
            group.wait()
        }
        return work.firstError
    }
}

/// The partitions left to close at shutdown, taken one at a time by the closing threads.
final class CloseQueue: Sendable {
    private let logs: [PartitionLog]
    private let state = Mutex<(next: Int, firstError: Error?)>((0, nil))

    init(_ logs: [PartitionLog]) { self.logs = logs }

    var firstError: Error? { state.withLock { $0.firstError } }

    func drain() {
        while true {
            let i = state.withLock { s -> Int in
                defer { s.next += 1 }
                return s.next
            }
            guard i < logs.count else { return }
            do {
                try logs[i].close()
            } catch {
                state.withLock { $0.firstError = $0.firstError ?? error }
            }
        }
    }
}

/// A dispatch timer handed across isolation domains; it is only started and cancelled.
struct TimerBox: @unchecked Sendable {
    let source: DispatchSourceTimer
}


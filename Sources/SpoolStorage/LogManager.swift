#if canImport(Glibc)
import Glibc
#endif
import CSpoolNative
import Dispatch
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

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }
}

/// The storage layer's front door: topics, their partition logs, committed
/// offsets, and the background work (retention, time-based flushes).
///
/// Opening takes an exclusive lock on the data directory, so two brokers can
/// never share it. A clean ``close()`` leaves a marker; without it, the next
/// open re-validates the tail of every partition.
public final class LogManager: Sendable {
    public static let cleanShutdownMarker = ".clean-shutdown"
    public static let lockFileName = ".lock"

    public let config: StorageConfig
    public let topics: TopicStore
    public let offsets: OffsetStore
    public let files: FileDescriptorCache
    /// Told about fsyncs, recoveries, retention deletions and stopped partitions.
    public let observer: any StorageObserver
    /// True when the previous run stopped cleanly (no recovery scan was needed).
    public let openedClean: Bool
    private let logs: Mutex<[TopicPartition: PartitionLog]>
    private let lockFD: Int32
    private let timer: Mutex<TimerBox?> = Mutex(nil)
    private let closed = Atomic<Bool>(false)

    public init(config: StorageConfig, io: FileIO = PosixFileIO(), observer: any StorageObserver = NoStorageObserver()) throws {
        self.config = config
        self.observer = observer
        let dir = config.dataDirectory
        try Directory.create(dir)
        lockFD = open(dir + "/" + Self.lockFileName, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw ioError("open lock file in \(dir)") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw StorageError(.io, "data directory \(dir) is in use by another Spool process")
        }
        files = FileDescriptorCache(capacity: config.maxOpenFiles, io: io)
        topics = try TopicStore(dataDirectory: dir, io: io)
        offsets = try OffsetStore(dataDirectory: dir, io: io)
        let marker = dir + "/" + Self.cleanShutdownMarker
        // A directory without topics has nothing to recover: it counts as clean.
        openedClean = Directory.fileExists(marker) || topics.all.isEmpty
        var opened: [TopicPartition: PartitionLog] = [:]
        for topic in topics.all {
            let topicConfig = try TopicConfig(topic.overrides, base: config.topicDefaults)
            for p in 0..<topic.partitions {
                let tp = TopicPartition(topic.name, p)
                opened[tp] = try PartitionLog(directory: Self.directory(dir, tp), topic: topic.name, partition: p,
                                              config: topicConfig, files: files, cleanShutdown: openedClean, observer: observer)
            }
        }
        // Directories of deleted topics whose removal was interrupted.
        for name in try Directory.list(dir) where name.hasSuffix(".deleted") {
            try? Directory.removeTree(dir + "/" + name)
        }
        logs = Mutex(opened)
        if openedClean {
            try Directory.removeFile(marker)
            try Directory.sync(dir)
        }
    }

    static func directory(_ dataDirectory: String, _ tp: TopicPartition) -> String {
        dataDirectory + "/" + tp.topic + "-" + String(tp.partition)
    }

    // MARK: Topics

    /// Creates a topic with `partitions` partitions and config `overrides`.
    @discardableResult
    public func createTopic(_ name: String, partitions: Int32, overrides: [String: String] = [:]) throws -> TopicDefinition {
        try checkOpen()
        let topicConfig = try TopicConfig(overrides, base: config.topicDefaults)
        let definition = TopicDefinition(name: name, partitions: partitions, overrides: overrides)
        try topics.create(definition)
        try logs.withLock { logs in
            for p in 0..<partitions {
                let tp = TopicPartition(name, p)
                logs[tp] = try PartitionLog(directory: Self.directory(config.dataDirectory, tp), topic: name, partition: p,
                                            config: topicConfig, files: files, cleanShutdown: true, observer: observer)
            }
        }
        try Directory.sync(config.dataDirectory)
        return definition
    }

    /// Deletes a topic: its definition first (atomically), then its data and committed offsets.
    public func deleteTopic(_ name: String) throws {
        try checkOpen()
        let definition = try topics.delete(name)
        let removed = logs.withLock { logs -> [PartitionLog] in
            (0..<definition.partitions).compactMap { logs.removeValue(forKey: TopicPartition(name, $0)) }
        }
        for log in removed {
            let doomed = log.directory + ".deleted"
            try? Directory.rename(log.directory, doomed)
            try? log.delete()
            try? Directory.removeTree(doomed)
        }
        try offsets.removeTopic(name)
        try Directory.sync(config.dataDirectory)
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
        for log in all {
            deleted += (try? log.applyRetention(now: now)) ?? 0
        }
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

    /// Flushes and closes every partition, then leaves the clean-shutdown marker.
    /// If any partition failed, no marker is written, so the next start recovers.
    public func close() throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        timer.withLock { $0?.source.cancel(); $0 = nil }
        var firstError: Error?
        for log in logs.withLock({ Array($0.values) }) {
            do { try log.close(sync: false) } catch { firstError = firstError ?? error }
        }
        files.closeAll()
        // One syncfs makes every partition's log, indexes and recovery point durable
        // (thousands of partitions would otherwise cost thousands of fsyncs).
        let dirFD = open(config.dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            if spool_syncfs(dirFD) != 0 { firstError = firstError ?? ioError("syncfs \(config.dataDirectory)") }
            Glibc.close(dirFD)
        } else {
            firstError = firstError ?? ioError("open \(config.dataDirectory)")
        }
        if firstError == nil {
            try Directory.writeAtomically([], to: config.dataDirectory + "/" + Self.cleanShutdownMarker)
        }
        flock(lockFD, LOCK_UN)
        Glibc.close(lockFD)
        if let firstError { throw firstError }
    }
}

/// A dispatch timer handed across isolation domains; it is only started and cancelled.
struct TimerBox: @unchecked Sendable {
    let source: DispatchSourceTimer
}


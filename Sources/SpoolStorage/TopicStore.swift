import Synchronization

/// A topic's definition: its name, partition count and config overrides.
public struct TopicDefinition: Hashable, Sendable {
    public var name: String
    public var partitions: Int32
    /// Only the keys set explicitly for this topic; the rest come from the broker defaults.
    public var overrides: [String: String]

    public init(name: String, partitions: Int32, overrides: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.overrides = overrides
    }
}

/// The persisted set of topics (`topics.meta` in the data directory).
///
/// Every change rewrites the file atomically (temporary file, fsync, rename,
/// fsync of the directory), so a crash leaves the old or the new set, never a mix.
/// Changes are serialised by a writer lock; the set readers see (`get`, `all`, on the
/// produce and fetch paths) is behind its own lock, which is never held across I/O.
/// Format: a line per topic — `name<TAB>partitions<TAB>key=value<TAB>…` — with a
/// version line first; names and keys cannot contain tabs or newlines.
public final class TopicStore: Sendable {
    public static let fileName = "topics.meta"
    static let header = "spool-topics v1"
    public static let maxPartitions: Int32 = 10_000

    let path: String
    let io: FileIO
    private let topics: Mutex<[String: TopicDefinition]>
    /// Held by one change at a time, across its file rewrite.
    private let writer = Mutex(())

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        self.path = dataDirectory + "/" + Self.fileName
        self.io = io
        var loaded: [String: TopicDefinition] = [:]
        for line in try MetadataFile.readLines(path, header: Self.header, io: io) ?? [] {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2, let partitions = Int32(fields[1]) else {
                throw StorageError(.corrupt, "\(path): bad line '\(line)'")
            }
            var overrides: [String: String] = [:]
            for field in fields.dropFirst(2) {
                guard let eq = field.firstIndex(of: "=") else { throw StorageError(.corrupt, "\(path): bad config '\(field)'") }
                overrides[String(field[..<eq])] = String(field[field.index(after: eq)...])
            }
            loaded[fields[0]] = TopicDefinition(name: fields[0], partitions: partitions, overrides: overrides)
        }
        topics = Mutex(loaded)
    }

    public var all: [TopicDefinition] {
        topics.withLock { Array($0.values) }.sorted { $0.name < $1.name }
    }

    public func get(_ name: String) -> TopicDefinition? {
        topics.withLock { $0[name] }
    }

    /// Adds a topic and persists the set; throws if it exists or is invalid.
    public func create(_ topic: TopicDefinition) throws {
        try TopicName.validate(topic.name)
        guard topic.partitions >= 1 && topic.partitions <= Self.maxPartitions else {
            throw StorageError(.invalidConfig, "partitions must be between 1 and \(Self.maxPartitions), not \(topic.partitions)")
        }
        for (key, value) in topic.overrides where key.contains("\t") || key.contains("\n") || value.contains("\t") || value.contains("\n") {
            throw StorageError(.invalidConfig, "config \(key) has a tab or newline")
        }
        try change { next in
            guard next[topic.name] == nil else { throw StorageError(.topicExists, "topic \(topic.name) already exists") }
            next[topic.name] = topic
        }
    }

    /// Applies `edit` to a copy of the set, persists it (outside the readers' lock), then
    /// publishes it. Writers are serialised, so no change is lost.
    private func change<R>(_ edit: (inout [String: TopicDefinition]) throws -> R) throws -> R {
        try writer.withLock { _ in
            var next = topics.withLock { $0 }
            let result = try edit(&next)
            try persist(next)
            topics.withLock { $0 = next }
            return result
        }
    }

    /// Replaces a topic's overrides and persists.
    public func update(_ topic: TopicDefinition) throws {
        try change { next in
            guard next[topic.name] != nil else { throw StorageError(.unknownTopic, "topic \(topic.name) does not exist") }
            next[topic.name] = topic
        }
    }

    /// Removes a topic and persists; returns its definition.
    @discardableResult
    public func delete(_ name: String) throws -> TopicDefinition {
        try change { next in
            guard let old = next.removeValue(forKey: name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
            return old
        }
    }

    private func persist(_ all: [String: TopicDefinition]) throws {
        let lines = all.values.sorted(by: { $0.name < $1.name }).map { topic in
            ([topic.name, String(topic.partitions)] + topic.overrides.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" })
                .joined(separator: "\t")
        }
        try MetadataFile.write(path, header: Self.header, lines: lines, io: io)
    }
}

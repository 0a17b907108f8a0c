import Synchronization

/// A topic and a partition.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)-\(partition)" }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}

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

/// Committed offsets per consumer group and partition (`consumer-offsets.meta`).
///
/// A commit is durable when `commit` returns: the whole table is rewritten
/// atomically (temporary file, fsync, rename, fsync of the directory). That is
/// simple and crash-safe; its cost grows with the number of groups × partitions,
/// which suits the usual commit rates (a few per second per group). Commits are
/// serialised, so concurrent callers never lose each other's updates.
public final class OffsetStore: Sendable {
    public static let fileName = "consumer-offsets.meta"
    static let header = "spool-offsets v1"
    public static let maxGroupNameBytes = 255
    public static let maxMetadataBytes = 4096

    let path: String
    let io: FileIO
    private let table: Mutex<[String: [TopicPartition: CommittedOffset]]>

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        self.path = dataDirectory + "/" + Self.fileName
        self.io = io
        var loaded: [String: [TopicPartition: CommittedOffset]] = [:]
        for line in try MetadataFile.readLines(path, header: Self.header, io: io) ?? [] {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6, let partition = Int32(f[2]), let offset = Int64(f[3]), let ts = Int64(f[4]),
                  let group = Self.unescape(f[0]), let metadata = Self.unescape(f[5]) else {
                throw StorageError(.corrupt, "\(path): bad line '\(line)'")
            }
            loaded[group, default: [:]][TopicPartition(f[1], partition)] = CommittedOffset(offset: offset, metadata: metadata, commitTimestamp: ts)
        }
        table = Mutex(loaded)
    }

    /// Stores `offsets` for `group`; durable on return.
    public func commit(group: String, _ offsets: [TopicPartition: CommittedOffset]) throws {
        guard !group.isEmpty, group.utf8.count <= Self.maxGroupNameBytes else {
            throw StorageError(.invalidConfig, "group id must be 1 to \(Self.maxGroupNameBytes) bytes")
        }
        for (tp, committed) in offsets {
            guard committed.offset >= 0 else {
                throw StorageError(.offsetOutOfRange, "cannot commit negative offset \(committed.offset) for \(tp)")
            }
            guard committed.metadata.utf8.count <= Self.maxMetadataBytes else {
                throw StorageError(.invalidConfig, "commit metadata over \(Self.maxMetadataBytes) bytes")
            }
        }
        try table.withLock { all in
            var next = all
            next[group, default: [:]].merge(offsets) { _, new in new }
            try persist(next)
            all = next
        }
    }

    public func committed(group: String) -> [TopicPartition: CommittedOffset] {
        table.withLock { $0[group] ?? [:] }
    }

    public var groups: [String] {
        table.withLock { Array($0.keys) }.sorted()
    }

    /// Forgets a topic's offsets in every group (when the topic is deleted).
    public func removeTopic(_ topic: String) throws {
        try table.withLock { all in
            var next = all
            for group in next.keys {
                next[group] = next[group]!.filter { $0.key.topic != topic }
                if next[group]!.isEmpty { next.removeValue(forKey: group) }
            }
            guard next != all else { return }
            try persist(next)
            all = next
        }
    }

    /// Forgets a group's committed offsets (DeleteGroups, offset expiry); durable on return.
    public func removeGroup(_ group: String) throws {
        try table.withLock { all in
            guard all[group] != nil else { return }
            var next = all
            next.removeValue(forKey: group)
            try persist(next)
            all = next
        }
    }

    private func persist(_ all: [String: [TopicPartition: CommittedOffset]]) throws {
        var lines: [String] = []
        for group in all.keys.sorted() {
            for (tp, c) in all[group]!.sorted(by: { $0.key < $1.key }) {
                lines.append("\(Self.escape(group))\t\(tp.topic)\t\(tp.partition)\t\(c.offset)\t\(c.commitTimestamp)\t\(Self.escape(c.metadata))")
            }
        }
        try MetadataFile.write(path, header: Self.header, lines: lines, io: io)
    }

    /// Percent-escapes tab, newline and percent so free text fits the line format.
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "%": out += "%25"
            case "\t": out += "%09"
            case "\n": out += "%0A"
            case "\r": out += "%0D"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

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

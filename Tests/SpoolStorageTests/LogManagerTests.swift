import Foundation
import SpoolTestSupport
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

@Suite struct LogManagerTests {
    @Test func topicsAndConfigsSurviveRestart() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        do {
            let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
            try storage.createTopic("orders", partitions: 3, overrides: ["retention.ms": "60000", "compression.type": "gzip"])
            try storage.createTopic("events.v1_x-y", partitions: 1)
            var batch = makeBatch(4)
            _ = try storage.partition(TopicPartition("orders", 2)).append(&batch)
            try storage.close()
        }
        let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        #expect(storage.openedClean)
        #expect(storage.topics.all.map(\.name) == ["events.v1_x-y", "orders"])
        let config = try storage.topicConfig("orders")
        #expect(config.retentionMillis == 60000 && config.compression == .gzip)
        #expect(try storage.partitions(of: "orders").count == 3)
        #expect(try storage.partition(TopicPartition("orders", 2)).endOffset == 4)
        try storage.close()
    }

    @Test func topicErrorsAreTyped() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        defer { try? storage.close() }
        try storage.createTopic("a", partitions: 1)
        #expect { try storage.createTopic("a", partitions: 1) } throws: { ($0 as? StorageError)?.code == .topicExists }
        for bad in ["", ".", "..", "has space", "slash/no", "ünïcode", String(repeating: "x", count: 250)] {
            #expect { try storage.createTopic(bad, partitions: 1) } throws: { ($0 as? StorageError)?.code == .invalidTopicName }
        }
        #expect(throws: StorageError.self) { try storage.createTopic("zero", partitions: 0) }
        #expect { try storage.createTopic("cfg", partitions: 1, overrides: ["no.such": "1"]) } throws: { ($0 as? StorageError)?.code == .invalidConfig }
        #expect { try storage.createTopic("cfg", partitions: 1, overrides: ["segment.bytes": "abc"]) } throws: { ($0 as? StorageError)?.code == .invalidConfig }
        #expect { try storage.createTopic("cfg", partitions: 1, overrides: ["compression.type": "brotli"]) } throws: { ($0 as? StorageError)?.code == .invalidConfig }
        for codec in ["snappy", "zstd"] {
            try storage.createTopic("cfg-\(codec)", partitions: 1, overrides: ["compression.type": codec])
            #expect(try storage.topicConfig("cfg-\(codec)").compression == CompressionCodec(name: codec))
        }
        #expect { _ = try storage.partition(TopicPartition("nope", 0)) } throws: { ($0 as? StorageError)?.code == .unknownTopic }
        #expect { _ = try storage.partition(TopicPartition("a", 1)) } throws: { ($0 as? StorageError)?.code == .unknownPartition }
        #expect { try storage.deleteTopic("nope") } throws: { ($0 as? StorageError)?.code == .unknownTopic }
    }

    @Test func deletingATopicRemovesItsDataAndOffsets() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        try storage.createTopic("gone", partitions: 2)
        var batch = makeBatch(2)
        _ = try storage.partition(TopicPartition("gone", 0)).append(&batch)
        try storage.offsets.commit(group: "g", [TopicPartition("gone", 0): CommittedOffset(offset: 1, commitTimestamp: 0)])
        try storage.deleteTopic("gone")
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/gone-0"))
        #expect(storage.offsets.committed(group: "g").isEmpty)
        // The name is free again, and the new topic starts empty.
        try storage.createTopic("gone", partitions: 1)
        #expect(try storage.partition(TopicPartition("gone", 0)).endOffset == 0)
        try storage.close()
    }

    @Test func alterTopicChangesConfigForLiveLogs() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        try storage.createTopic("t", partitions: 1)
        _ = try storage.alterTopic("t", set: ["retention.bytes": "1000"])
        #expect(try storage.partition(TopicPartition("t", 0)).config.retentionBytes == 1000)
        try storage.close()
        let again = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        #expect(try again.topicConfig("t").retentionBytes == 1000)
        try again.close()
    }

    /// Commits are durable when `commit` returns: checked after a simulated power loss that
    /// drops everything not fsynced (not by re-reading the page cache, which proves nothing).
    @Test func committedOffsetsAreDurableAndAtomic() throws {
        var random = SeededRandom(test: "committedOffsetsAreDurableAndAtomic")
        let seed = random.seed
        for round in 0..<20 {
            let disk = SimulatedDisk()
            let storage = try LogManager(config: StorageConfig(dataDirectory: "/data"), io: disk, executor: ManualExecutor().executor)
            try storage.offsets.commit(group: "g1", [
                TopicPartition("a", 0): CommittedOffset(offset: 10, metadata: "tab\there\nnewline 100%", commitTimestamp: 5),
                TopicPartition("a", 1): CommittedOffset(offset: 20, commitTimestamp: 6),
            ])
            try storage.offsets.commit(group: "g2 with space", [TopicPartition("b", 0): CommittedOffset(offset: 3, commitTimestamp: 7)])
            try storage.offsets.commit(group: "g1", [TopicPartition("a", 0): CommittedOffset(offset: 11, commitTimestamp: 8)])
            #expect(throws: StorageError.self) { try storage.offsets.commit(group: "", [:]) }
            #expect(throws: StorageError.self) { try storage.offsets.commit(group: "g", [TopicPartition("a", 0): CommittedOffset(offset: -5, commitTimestamp: 0)]) }
            // No close(): the power goes out; only what was fsynced is there.
            let after = disk.powerLoss(&random)
            let offsets = try LogManager(config: StorageConfig(dataDirectory: "/data"), io: after, executor: ManualExecutor().executor).offsets
            #expect(offsets.groups == ["g1", "g2 with space"], "seed \(seed) round \(round)")
            #expect(offsets.committed(group: "g1")[TopicPartition("a", 0)] == CommittedOffset(offset: 11, commitTimestamp: 8))
            #expect(offsets.committed(group: "g1")[TopicPartition("a", 1)]?.offset == 20)
            #expect(offsets.committed(group: "g2 with space")[TopicPartition("b", 0)]?.offset == 3)
        }
    }

    @Test func metadataWithSpecialCharactersRoundTrips() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let store = try OffsetStore(dataDirectory: tmp.path)
        let meta = "tab\there\nnewline 100% ✓"
        try store.commit(group: "g", [TopicPartition("a", 0): CommittedOffset(offset: 1, metadata: meta, commitTimestamp: 2)])
        #expect(try OffsetStore(dataDirectory: tmp.path).committed(group: "g")[TopicPartition("a", 0)]?.metadata == meta)
    }

    @Test func aSecondProcessCannotOpenTheSameDataDirectory() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let storage = try LogManager(config: StorageConfig(dataDirectory: tmp.path))
        #expect { _ = try LogManager(config: StorageConfig(dataDirectory: tmp.path)) } throws: { error in
            (error as? StorageError)?.message.contains("in use") == true
        }
        try storage.close()
        try LogManager(config: StorageConfig(dataDirectory: tmp.path)).close()
    }

    /// A clean close is seen as clean by the next start (and the marker is gone once
    /// started); a stop without close (power loss) is seen as unclean, and the partitions
    /// are recovered. (The old test only ever checked a clean start.)
    @Test func uncleanStartIsDetected() throws {
        let disk = SimulatedDisk()
        let config = StorageConfig(dataDirectory: "/data")
        let first = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        try first.createTopic("t", partitions: 1)
        var a = makeBatch(2, tag: "a")
        _ = try first.partition(TopicPartition("t", 0)).append(&a)
        try first.close()
        let second = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        #expect(second.openedClean)
        #expect(disk.kind(of: "/data/" + LogManager.cleanShutdownMarker) == nil)
        var b = makeBatch(3, tag: "b")
        let log = try second.partition(TopicPartition("t", 0))
        _ = try log.append(&b)
        try log.flush()
        // The power goes out: no close.
        var random = SeededRandom(seed: 1)
        let after = disk.powerLoss(&random)
        let third = try LogManager(config: config, io: after, executor: ManualExecutor().executor)
        #expect(!third.openedClean)
        #expect(try allValues(third.partition(TopicPartition("t", 0))).map(\.value) == ["a-0", "a-1", "b-0", "b-1", "b-2"])
        try third.close()
    }

    /// Thousands of partitions stay within the file descriptor bound.
    @Test func thousandsOfPartitionsStayWithinTheOpenFileBound() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = StorageConfig(dataDirectory: tmp.path)
        config.maxOpenFiles = 64
        let storage = try LogManager(config: config)
        try storage.createTopic("wide", partitions: 2000)
        for p in 0..<Int32(2000) {
            var batch = makeBatch(1, tag: "p\(p)")
            _ = try storage.partition(TopicPartition("wide", p)).append(&batch)
            #expect(storage.files.openCount <= 64)
        }
        for p in stride(from: Int32(0), to: 2000, by: 37) {
            let records = try decodeAll(try storage.partition(TopicPartition("wide", p)).readBytes(from: 0, maxBytes: 1000))
            #expect(records.map { String(buffer: $0.value!) } == ["p\(p)-0"])
        }
        #expect(storage.files.openCount <= 64)
        // Counted by the kernel: descriptors of this process open on files of this data directory.
        #expect(openDescriptors(under: tmp.path) <= 64 + 2) // the cache bound, plus the data-directory lock and the offsets log
        try storage.close()
        // Reopening all 2000 partitions also stays within the bound.
        let again = try LogManager(config: config)
        #expect(again.files.openCount <= 64)
        #expect(try again.partition(TopicPartition("wide", 1999)).endOffset == 1)
        try again.close()
    }

    @Test func backgroundRetentionRuns() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = StorageConfig(dataDirectory: tmp.path)
        config.retentionCheckIntervalMillis = 20
        config.flushCheckIntervalMillis = 10
        let storage = try LogManager(config: config)
        try storage.createTopic("r", partitions: 1, overrides: ["segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"])
        let log = try storage.partition(TopicPartition("r", 0))
        for i in 0..<40 {
            var batch = makeBatch(2, tag: "r\(i)", valueBytes: 50)
            _ = try log.append(&batch)
        }
        storage.startBackgroundWork()
        let deadline = ContinuousClock.now + .seconds(5)
        while log.startOffset == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(log.startOffset > 0)
        #expect(log.sizeBytes < 2048 + 1024 + 512)
        try storage.close()
    }
}

/// Descriptors of this process that point at files below `directory` (other tests running
/// in parallel open sockets and files of their own, so a plain count would be noisy).
func openDescriptors(under directory: String) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd))?.hasPrefix(directory) ?? false
    }.count
}

@Suite struct FileDescriptorCacheTests {
    @Test func forgettingAFileInUseClosesItAfterItsLastUserAndReopensFresh() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let cache = FileDescriptorCache(capacity: 4)
        let path = tmp.path + "/f"
        try cache.withDescriptor(path, create: true) { old in
            // Deleted while in use: a plain use never brings the file back (no O_CREAT)...
            cache.forget(path)
            try Directory.removeFile(path, io: cache.io)
            #expect { try cache.withDescriptor(path) { _ in } } throws: { ($0 as? StorageError)?.errno == ENOENT }
            #expect(!FileManager.default.fileExists(atPath: path), "a re-open re-created a deleted file")
            // ...only an explicit creation does (a topic created again), with a fresh descriptor.
            let size = try cache.withDescriptor(path, create: true) { new -> Int64 in
                #expect(new != old)
                return try cache.io.size(new)
            }
            #expect(size == 0)
        }
        cache.closeAll()
        #expect(openDescriptors(under: tmp.path) == 0, "no descriptor leaked")
    }
}

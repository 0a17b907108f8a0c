#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SpoolRecords
import SpoolTestSupport
@testable import SpoolStorage
import Synchronization
import Testing

/// A partition log on a simulated disk, with background work run by hand.
func simulatedLog(_ disk: SimulatedDisk, config: TopicConfig = TopicConfig(), capacity: Int = 16, clean: Bool = true,
                  executor: ManualExecutor = ManualExecutor(), clock: @escaping @Sendable () -> Int64 = PartitionLog.wallClockMillis)
    throws -> (PartitionLog, FileDescriptorCache) {
    let files = FileDescriptorCache(capacity: capacity, io: disk)
    let log = try PartitionLog(directory: "/data/t-0", topic: "t", partition: 0, config: config, files: files,
                               cleanShutdown: clean, clock: clock, executor: executor.executor)
    return (log, files)
}

/// Every record's value, in offset order, reading the whole log.
func allValues(_ log: PartitionLog) throws -> [(offset: Int64, value: String)] {
    var out: [(Int64, String)] = []
    var offset = log.startOffset
    while offset < log.endOffset {
        let records = try decodeAll(try log.readBytes(from: offset, maxBytes: 1 << 20))
        guard let last = records.last else { break }
        out += records.filter { $0.offset >= offset }.map { ($0.offset, String(buffer: $0.value!)) }
        offset = last.offset + 1
    }
    return out
}

@Suite struct DescriptorShortageTests {
    /// Running out of descriptors (EMFILE) while appending, reading, fsyncing or rolling
    /// fails that one call with `.resourceExhausted`; the partition never stops. (Before,
    /// a failed open during an append stopped the partition until a restart.)
    @Test func aFailedOpenOrDupFailsOneCallAndNeverStopsThePartition() throws {
        let disk = SimulatedDisk()
        var config = TopicConfig()
        config.segmentBytes = 1024
        let (log, files) = try simulatedLog(disk, config: config)
        var a = makeBatch(2, tag: "a")
        _ = try log.append(&a)

        // Append: the segment is cold (closed by the cache), its open fails twice
        // (the cache gives back idle descriptors and tries once more).
        files.closeAll()
        disk.failOpens(2)
        var b = makeBatch(1, tag: "b")
        #expect { _ = try log.append(&b) } throws: { ($0 as? StorageError)?.code == .resourceExhausted }
        #expect(log.failure == nil)
        #expect(log.endOffset == 2, "nothing was appended")
        var c = makeBatch(1, tag: "c")
        #expect(try log.append(&c).baseOffset == 2)

        // One EMFILE while idle descriptors can be given back is absorbed by the cache.
        files.closeAll()
        disk.failOpens(1)
        var d = makeBatch(1, tag: "d")
        #expect(try log.append(&d).baseOffset == 3)

        // Read: the dup for a zero-copy send fails; the next one works.
        let span = try #require(try log.read(from: 0, maxBytes: 1 << 20).span)
        disk.failOpens(1)
        #expect { _ = try log.openDescriptor(for: span) } throws: { ($0 as? StorageError)?.code == .resourceExhausted }
        let fd = try log.openDescriptor(for: span)
        disk.close(fd)

        // fsync: the open for it fails; the flush fails, nothing is lost, the next flush works.
        files.closeAll()
        disk.failOpens(2)
        #expect { try log.flush() } throws: { ($0 as? StorageError)?.code == .resourceExhausted }
        #expect(log.failure == nil)
        #expect(log.durableOffset < 4)
        try log.flush()
        #expect(log.durableOffset == 4)

        // Roll: the new segment cannot be created; the append fails, the log is unchanged.
        while log.segmentCount == 1 {
            var filler = makeBatch(4, tag: "f", valueBytes: 40)
            let before = log.endOffset
            disk.failOpens(2)
            do {
                _ = try log.append(&filler)
                // No roll needed yet (the segment was warm): appended.
                #expect(log.endOffset > before)
            } catch let error as StorageError {
                #expect(error.code == .resourceExhausted)
                #expect(log.endOffset == before && log.segmentCount == 1)
                disk.failOpens(0)
                var retry = makeBatch(4, tag: "f", valueBytes: 40)
                _ = try log.append(&retry)
                #expect(log.segmentCount == 2)
            }
            disk.failOpens(0)
        }
        #expect(log.failure == nil)
        let values = try allValues(log)
        #expect(values.map(\.offset) == Array(0..<log.endOffset))
        #expect(values.prefix(4).map(\.value) == ["a-0", "a-1", "c-0", "d-0"])
    }
}

@Suite struct FullDiskTests {
    func storage(_ disk: SimulatedDisk) throws -> LogManager {
        var config = StorageConfig(dataDirectory: "/data")
        config.topicDefaults.retentionMillis = -1
        return try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
    }

    /// On a full disk, deleting a topic frees its space: the data goes first (removing
    /// writes nothing), then the definition is rewritten. Before, the definition was
    /// rewritten first, which failed with ENOSPC, so nothing could be freed through Spool.
    @Test func deletingATopicWorksOnAFullDisk() throws {
        let disk = SimulatedDisk()
        let storage = try storage(disk)
        try storage.createTopic("big", partitions: 2, overrides: ["segment.bytes": "2048"])
        try storage.createTopic("keep", partitions: 1)
        var kept = makeBatch(3, tag: "keep")
        _ = try storage.partition(TopicPartition("keep", 0)).append(&kept)
        try storage.partition(TopicPartition("keep", 0)).flush()
        let big = try storage.partition(TopicPartition("big", 0))
        for i in 0..<40 {
            var batch = makeBatch(4, tag: "big\(i)", valueBytes: 50)
            _ = try big.append(&batch)
        }
        try storage.offsets.commit(group: "g", [TopicPartition("big", 0): CommittedOffset(offset: 7, commitTimestamp: 0),
                                               TopicPartition("keep", 0): CommittedOffset(offset: 1, commitTimestamp: 0)])
        disk.fill(leaving: 0)
        var more = makeBatch(1)
        #expect { _ = try big.append(&more) } throws: { ($0 as? StorageError)?.errno == ENOSPC }
        let usedBefore = disk.usedBytes

        try storage.deleteTopic("big")
        #expect(storage.topics.get("big") == nil)
        #expect(!disk.paths.contains { $0.hasPrefix("/data/big-") }, "left: \(disk.paths.filter { $0.hasPrefix("/data/big") })")
        #expect(disk.usedBytes < usedBefore - 5000)
        #expect(storage.offsets.committed(group: "g").keys.map(\.topic) == ["keep"], "the deleted topic's offsets are gone too")
        #expect { _ = try big.read(from: 0, maxBytes: 10) } throws: { ($0 as? StorageError)?.code == .closed }
        // The rest works, and the delete survives a restart.
        var after = makeBatch(1, tag: "after")
        _ = try storage.partition(TopicPartition("keep", 0)).append(&after)
        try storage.close()
        let again = try self.storage(disk)
        #expect(again.topics.all.map(\.name) == ["keep"])
        #expect(try allValues(again.partition(TopicPartition("keep", 0))).map(\.value) == ["keep-0", "keep-1", "keep-2", "after-0"])
        try again.close()
    }

    /// A partition stopped by a failed write (ENOSPC) runs again by itself once space is
    /// back: the next append after the retry interval cuts the torn tail and goes on.
    /// Before, it stayed stopped until the broker restarted.
    @Test func aPartitionStoppedByAFullDiskRunsAgainOnceSpaceIsBack() throws {
        let disk = SimulatedDisk()
        let now = Atomic<Int64>(1_000_000)
        let (log, _) = try simulatedLog(disk, clock: { now.load(ordering: .relaxed) })
        var acknowledged: [String] = []
        for i in 0..<5 {
            var batch = makeBatch(1, tag: "ok\(i)")
            _ = try log.append(&batch)
            acknowledged.append("ok\(i)-0")
        }
        try log.flush()
        disk.fill(leaving: 30) // the next batch is torn after 30 bytes
        var torn = makeBatch(1, tag: "torn")
        #expect { _ = try log.append(&torn) } throws: { ($0 as? StorageError)?.code == .logFailed }
        #expect(log.failure?.errno == ENOSPC)
        // Still full: refused (and not retried before the interval).
        var early = makeBatch(1, tag: "early")
        #expect { _ = try log.append(&early) } throws: { ($0 as? StorageError)?.code == .logFailed }
        disk.setCapacity(nil)
        now.add(PartitionLog.writeFailureRetryMillis - 1, ordering: .relaxed)
        #expect { _ = try log.append(&early) } throws: { ($0 as? StorageError)?.code == .logFailed }
        now.add(1, ordering: .relaxed)
        var later = makeBatch(1, tag: "later")
        #expect(try log.append(&later).baseOffset == 5)
        #expect(log.failure == nil)
        try log.flush()
        #expect(try allValues(log).map(\.value) == acknowledged + ["later-0"])
        // The torn bytes are gone from the file, not just skipped.
        #expect(disk.contents("/data/t-0/00000000000000000000.log")!.count == Int(log.sizeBytes))
    }

    /// acks=all and a full disk: appends that reached the log before the write that hit
    /// ENOSPC are made durable and acknowledged (the torn tail is cut first, so the fsync
    /// never makes it durable); only the failed batch and later ones are refused. Before,
    /// the failure failed every waiter, so a client retried records that were in the log
    /// (and an idempotent producer's state already counted them: the retry was refused
    /// with "sent sequence 384; expected 1408" for good).
    @Test func aFullDiskFailsOnlyTheBatchThatDidNotFitNotTheAppendsWaitingForTheirFsync() async throws {
        let disk = SimulatedDisk()
        let executor = ManualExecutor()
        let (log, _) = try simulatedLog(disk, executor: executor)
        var appended: [AppendResult] = []
        for i in 0..<3 {
            var batch = makeBatch(2, tag: "ok\(i)")
            appended.append(try log.append(&batch))
        }
        disk.fill(leaving: 30) // the next batch is torn after 30 bytes
        var torn = makeBatch(2, tag: "torn")
        #expect { _ = try log.append(&torn) } throws: { ($0 as? StorageError)?.code == .logFailed }
        #expect(disk.contents("/data/t-0/00000000000000000000.log")!.count == Int(log.sizeBytes), "the torn tail was cut at once")
        // The acks=all waiters of the three appends: one group commit covers them.
        let waiting = Task { try await log.waitUntilDurable(appended.last!.lastOffset + 1) }
        while executor.pending == 0 { try await Task.sleep(for: .milliseconds(1)) }
        executor.drain()
        try await waiting.value
        #expect(log.durableOffset == 6)
        #expect(disk.isDurable("/data/t-0/00000000000000000000.log"))
        // A crash now keeps exactly the acknowledged records.
        var random = SeededRandom(seed: 17)
        let (after, _) = try simulatedLog(disk.powerLoss(&random), clean: false)
        #expect(try allValues(after).map(\.value) == ["ok0-0", "ok0-1", "ok1-0", "ok1-1", "ok2-0", "ok2-1"])
    }

    /// A failed fsync stops the partition for good (the kernel may have dropped the
    /// pages, so it never recovers by itself), until an admin `recover(topic:)` re-opens
    /// and re-checks it. Before, only a restart brought it back.
    @Test func aPartitionStoppedByAFailedFsyncIsRecoveredWithoutARestart() throws {
        let disk = SimulatedDisk()
        var config = StorageConfig(dataDirectory: "/data")
        config.topicDefaults.retentionMillis = -1
        let storage = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        try storage.createTopic("t", partitions: 2)
        let log = try storage.partition(TopicPartition("t", 1))
        var a = makeBatch(3, tag: "a")
        _ = try log.append(&a)
        try log.flush()
        disk.failFsyncs(true)
        var b = makeBatch(2, tag: "b")
        _ = try log.append(&b)
        #expect { try log.flush() } throws: { ($0 as? StorageError)?.code == .logFailed }
        disk.failFsyncs(false)
        var c = makeBatch(1, tag: "c")
        #expect { _ = try log.append(&c) } throws: { ($0 as? StorageError)?.code == .logFailed }
        #expect { try log.flush() } throws: { ($0 as? StorageError)?.code == .logFailed }

        #expect(try storage.recover(topic: "t") == [1])
        #expect(log.failure == nil)
        #expect(log.durableOffset == log.endOffset)
        var d = makeBatch(1, tag: "d")
        let appended = try log.append(&d)
        #expect(appended.baseOffset == log.endOffset - 1)
        try log.flush()
        let values = try allValues(log).map(\.value)
        #expect(values.prefix(3) == ["a-0", "a-1", "a-2"])
        #expect(values.last == "d-0")
        #expect(try storage.recover(topic: "t") == [], "nothing left to recover")
        try storage.close()
    }
}

@Suite struct StrayDataTests {
    /// Partition directories no topic owns (a delete cut short after its definition was
    /// rewritten) are removed at start, so their data never comes back under a topic
    /// created later with the same name. Before, they stayed, and a new topic of that
    /// name opened the old records.
    @Test func strayPartitionDirectoriesAreRemovedAtStart() throws {
        let disk = SimulatedDisk()
        let config = StorageConfig(dataDirectory: "/data")
        let first = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        try first.createTopic("kept", partitions: 1)
        try first.createTopic("gone", partitions: 2)
        for tp in [TopicPartition("kept", 0), TopicPartition("gone", 1)] {
            var batch = makeBatch(3, tag: "old")
            _ = try first.partition(tp).append(&batch)
        }
        try first.close()
        // As if a delete stopped right after the definition was rewritten: data left behind.
        let topicsFile = "/data/" + TopicStore.fileName
        let listed = String(decoding: disk.contents(topicsFile)!, as: UTF8.self)
        disk.setContents(topicsFile, Array(listed.split(separator: "\n").filter { !$0.hasPrefix("gone\t") }.joined(separator: "\n").utf8) + [0x0A])
        try disk.makeDirectory("/data/kept-1") // a partition the topic does not have
        let second = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        #expect(second.topics.all.map(\.name) == ["kept"])
        #expect(disk.kind(of: "/data/gone-0") == nil && disk.kind(of: "/data/gone-1") == nil && disk.kind(of: "/data/kept-1") == nil)
        #expect(try allValues(second.partition(TopicPartition("kept", 0))).count == 3)
        try second.createTopic("gone", partitions: 2)
        #expect(try second.partition(TopicPartition("gone", 1)).endOffset == 0, "the old records came back")
        try second.close()
    }
}

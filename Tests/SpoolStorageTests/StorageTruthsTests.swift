#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// What the storage layer claims about durability and identity, checked against a disk
/// that knows what is durable.
@Suite struct StorageTruthsTests {
    /// Rolling a segment fsyncs its log and both index files (via the group commit the
    /// roll starts) and then moves the recovery point to the new segment. Before, roll
    /// wrote the indexes unsynced and marked them clean, so they were never fsynced, and
    /// the recovery point moved only with some later acks=all flush.
    @Test func aRollFsyncsTheClosedSegmentAndItsIndexesAndMovesTheRecoveryPoint() throws {
        let disk = SimulatedDisk()
        let executor = ManualExecutor()
        var config = TopicConfig()
        config.segmentBytes = 2048
        config.indexIntervalBytes = 128
        let (log, _) = try simulatedLog(disk, config: config, executor: executor)
        while log.segmentCount < 2 {
            var batch = makeBatch(3, tag: "r", valueBytes: 30)
            _ = try log.append(&batch)
        }
        let closed = "/data/t-0/00000000000000000000"
        #expect(disk.kind(of: closed + ".index") == .file, "the closed segment has index files")
        #expect(executor.pending > 0, "the roll started a background flush")
        executor.drain()
        for ext in ["log", "index", "timeindex"] {
            #expect(disk.isDurable(closed + "." + ext), "\(ext) of the closed segment is not durable")
        }
        let active = try #require(disk.paths.first { $0.hasSuffix(".log") && !$0.hasPrefix(closed) })
        #expect(disk.isDurable(active), "the new segment's name is durable (directory fsynced)")
        #expect(disk.isDurable("/data/t-0/recovery-point"))
        let base = String(decoding: disk.contents("/data/t-0/recovery-point")!, as: UTF8.self)
        #expect(Int64(base.filter { !$0.isWhitespace }) == Int64(active.split(separator: "/").last!.dropLast(4)))
    }

    /// A clean close leaves the marker only after every file it vouches for was fsynced
    /// one by one (logs, indexes, directories, recovery points, metadata). Before, one
    /// `syncfs` was trusted, which some file systems ignore (and which bypassed FileIO).
    @Test func theCleanShutdownMarkerIsWrittenOnlyAfterEveryFileIsDurable() throws {
        let disk = SimulatedDisk()
        var config = StorageConfig(dataDirectory: "/data")
        config.topicDefaults.retentionMillis = -1
        let storage = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        try storage.createTopic("a", partitions: 3, overrides: ["segment.bytes": "1024", "index.interval.bytes": "100"])
        for p in Int32(0)..<3 {
            for i in 0..<(10 * Int(p + 1)) {
                var batch = makeBatch(2, tag: "a\(p)-\(i)", valueBytes: 20)
                _ = try storage.partition(TopicPartition("a", p)).append(&batch)
            }
        }
        try storage.offsets.commit(group: "g", [TopicPartition("a", 0): CommittedOffset(offset: 3, commitTimestamp: 1)])
        try storage.close()
        let notDurable = disk.paths.filter { !disk.isDurable($0) && !$0.hasSuffix("/.lock") }
        #expect(notDurable.isEmpty, "not durable after a clean close: \(notDurable)")
        #expect(disk.kind(of: "/data/" + LogManager.cleanShutdownMarker) == .file)

        // A partition that cannot be made durable means no marker.
        let again = try LogManager(config: config, io: disk, executor: ManualExecutor().executor)
        #expect(again.openedClean)
        var batch = makeBatch(1)
        _ = try again.partition(TopicPartition("a", 1)).append(&batch)
        disk.failFsyncs(true)
        #expect(throws: StorageError.self) { try again.close() }
        #expect(disk.kind(of: "/data/" + LogManager.cleanShutdownMarker) == nil)
    }

    /// A partition handle that outlived a topic delete refuses to read or write, so it
    /// never serves or corrupts a topic re-created under the same name. Before, it read
    /// the new topic's files through the same paths.
    @Test func aHandleThatOutlivedItsTopicNeverTouchesTheRecreatedTopic() throws {
        let disk = SimulatedDisk()
        let storage = try LogManager(config: StorageConfig(dataDirectory: "/data"), io: disk, executor: ManualExecutor().executor)
        try storage.createTopic("t", partitions: 1)
        let old = try storage.partition(TopicPartition("t", 0))
        var a = makeBatch(3, tag: "old")
        _ = try old.append(&a)
        try storage.deleteTopic("t")
        try storage.createTopic("t", partitions: 1)
        let new = try storage.partition(TopicPartition("t", 0))
        var b = makeBatch(5, tag: "new")
        _ = try new.append(&b)
        for call: () throws -> Void in [
            { _ = try old.read(from: 0, maxBytes: 1000) },
            { _ = try old.readBytes(from: 0, maxBytes: 1000) },
            { var c = makeBatch(1, tag: "ghost"); _ = try old.append(&c) },
            { try old.flush() },
            { try old.roll() },
            { _ = try old.offset(forTimestamp: 0) },
        ] {
            #expect { try call() } throws: { ($0 as? StorageError)?.code == .closed }
        }
        #expect(try allValues(new).map(\.value) == (0..<5).map { "new-\($0)" })
        try storage.close()
    }

    /// A group commit that fsyncs a segment retention deleted meanwhile must not bring
    /// the file back. Before, the descriptor cache re-opened it with O_CREAT and left an
    /// empty ghost segment, which the next start took for part of the log.
    @Test func aLateFsyncNeverRecreatesASegmentDeletedByRetention() throws {
        let disk = SimulatedDisk()
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.retentionBytes = 0
        config.retentionMillis = -1
        let executor = ManualExecutor()
        let (log, files) = try simulatedLog(disk, config: config, executor: executor)
        while log.segmentCount < 3 {
            var batch = makeBatch(3, valueBytes: 40)
            _ = try log.append(&batch)
        }
        // The flush started by the rolls captured the closed segments; just before it opens
        // the first one (the cache closed it), retention deletes it.
        files.closeAll()
        let first = "/data/t-0/00000000000000000000.log"
        let fired = Atomic<Bool>(false)
        disk.onOpen { path in
            if path == first, !fired.exchange(true, ordering: .relaxed) {
                _ = try? log.applyRetention(now: 0)
            }
        }
        executor.drain()
        disk.onOpen(nil)
        let didFire = fired.load(ordering: .relaxed)
        #expect(didFire)
        #expect(disk.kind(of: first) == nil, "a ghost of a deleted segment was created")
        #expect(log.failure == nil)
        #expect(log.startOffset > 0)
    }

    /// Offsets run contiguously through a segment: a batch whose base offset does not
    /// follow the previous batch (a flipped high bit) is where recovery cuts. Before, any
    /// larger base offset was accepted and moved the log end far ahead.
    @Test func recoveryCutsAtABaseOffsetThatBreaksContiguity() throws {
        let disk = SimulatedDisk()
        let (log, _) = try simulatedLog(disk)
        var sizes: [Int] = []
        for i in 0..<6 {
            var batch = makeBatch(2, tag: "c\(i)")
            sizes.append(batch.readableBytes)
            _ = try log.append(&batch)
        }
        try log.close()
        let path = "/data/t-0/00000000000000000000.log"
        let original = disk.contents(path)!
        // (batch, byte of its base offset, bit): a high bit (a far jump ahead), the low bit.
        for (damaged, byte, bit) in [(3, 0, UInt8(0x40)), (3, 7, UInt8(0x01)), (5, 1, UInt8(0x80))] {
            var bytes = original
            let position = sizes.prefix(damaged).reduce(0, +)
            bytes[position + byte] ^= bit
            disk.setContents(path, bytes)
            let (again, _) = try simulatedLog(disk, clean: false)
            #expect(again.endOffset == Int64(damaged * 2), "damage in batch \(damaged) (bit \(bit))")
            #expect(try allValues(again).map(\.value) == (0..<damaged).flatMap { i in ["c\(i)-0", "c\(i)-1"] })
            try again.close()
            disk.setContents(path, original)
        }
        // The same damage found by a clean open (the header walk after the index) is cut too.
        var bytes = original
        bytes[sizes.prefix(4).reduce(0, +)] ^= 0x40
        disk.setContents(path, bytes)
        let (clean, _) = try simulatedLog(disk, clean: true)
        #expect(clean.endOffset == 8)
    }

    /// The core can tell whether a committed offset can still be fetched from.
    @Test func aCommittedOffsetOutsideTheLogIsRecognised() throws {
        let disk = SimulatedDisk()
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.retentionBytes = 1024
        config.retentionMillis = -1
        let (log, _) = try simulatedLog(disk, config: config)
        for _ in 0..<30 {
            var batch = makeBatch(3, valueBytes: 40)
            _ = try log.append(&batch)
        }
        #expect(log.isFetchable(0) && log.isFetchable(log.endOffset))
        #expect(!log.isFetchable(log.endOffset + 1) && !log.isFetchable(-1))
        _ = try log.applyRetention(now: 0)
        #expect(log.startOffset > 0)
        #expect(!log.isFetchable(0))
        #expect(log.fetchableOffsets == log.startOffset...log.endOffset)
    }
}

/// No lock that produce, fetch, metadata or offset reads take is held while storage waits
/// for the disk: at every fsync (of a file or a directory), another thread must get through
/// the partition lock, the partitions map, the topic set and the committed offsets at once.
/// At every file or directory creation, the shared locks (map, topics, offsets) must be
/// free too. (Before, a roll fsynced the directory under the partition lock, topic
/// creation created thousands of partition directories under the map's lock, and topic
/// and offset rewrites fsynced under the locks their readers take.)
@Suite struct LockDisciplineTests {
    @Test func noReaderLockIsHeldAcrossAnFsync() throws {
        let disk = SimulatedDisk()
        var config = StorageConfig(dataDirectory: "/data")
        config.topicDefaults.retentionMillis = -1
        let executor = ManualExecutor()
        let storage = try LogManager(config: config, io: disk, executor: executor.executor)
        try storage.createTopic("probe", partitions: 1)
        let probeLog = try storage.partition(TopicPartition("probe", 0))
        let blocked = Mutex<[String]>([])
        let probes = Atomic<Int>(0)
        disk.onFsync { path in
            guard probes.add(1, ordering: .relaxed).newValue <= 300 else { return }
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                _ = probeLog.endOffset
                for topic in storage.topics.all {
                    for log in (try? storage.partitions(of: topic.name)) ?? [] { _ = log.endOffset }
                }
                _ = storage.topics.get("probe")
                _ = storage.offsets.committed(group: "g")
                done.signal()
            }
            if done.wait(timeout: .now() + 2) == .timedOut {
                // The probe gets through once this fsync's caller lets go of the lock.
                blocked.withLock { $0.append(path) }
            }
        }
        // Creating files and directories may happen under a partition's own lock (a roll
        // creates the next segment), never under the locks every partition shares.
        disk.onOpen { path in
            guard probes.add(1, ordering: .relaxed).newValue <= 600 else { return }
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                _ = try? storage.partition(TopicPartition("probe", 0))
                _ = storage.topics.get("probe")
                _ = storage.offsets.committed(group: "g")
                done.signal()
            }
            if done.wait(timeout: .now() + 2) == .timedOut { blocked.withLock { $0.append("open " + path) } }
        }
        try storage.createTopic("wide", partitions: 50, overrides: ["segment.bytes": "1024", "retention.bytes": "2048"])
        let log = try storage.partition(TopicPartition("wide", 7))
        for i in 0..<40 {
            var batch = makeBatch(3, tag: "w\(i)", valueBytes: 40)
            _ = try log.append(&batch)
            if i % 5 == 0 { try log.flush() }
        }
        executor.drain()
        storage.runRetention(now: 0)
        try storage.offsets.commit(group: "g", [TopicPartition("wide", 7): CommittedOffset(offset: 3, commitTimestamp: 0)])
        _ = try storage.alterTopic("wide", set: ["retention.bytes": "4096"])
        try storage.deleteTopic("wide")
        try storage.close()
        disk.onFsync(nil)
        disk.onOpen(nil)
        #expect(probes.load(ordering: .relaxed) > 20, "the workload fsynced")
        let stuck = blocked.withLock { $0 }
        #expect(stuck.isEmpty, "a reader waited for these fsyncs: \(stuck.prefix(5))")
    }
}

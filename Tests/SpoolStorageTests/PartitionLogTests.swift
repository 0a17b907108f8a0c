import Foundation
import SpoolTestSupport
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

@Suite struct PartitionLogTests {
    @Test func appendAssignsOffsetsAndReadsBack() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        var a = makeBatch(3, tag: "a")
        var b = makeBatch(5, tag: "b", codec: .lz4)
        #expect(try log.append(&a) == AppendResult(baseOffset: 0, lastOffset: 2, recordCount: 3))
        #expect(try log.append(&b) == AppendResult(baseOffset: 3, lastOffset: 7, recordCount: 5))
        #expect(log.startOffset == 0 && log.endOffset == 8 && log.highWatermark == 8)
        let all = try decodeAll(try log.readBytes(from: 0, maxBytes: 1 << 20))
        #expect(all.map(\.offset) == Array(0...7))
        #expect(all.map { String(buffer: $0.value!) } == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2", "b-3", "b-4"])
        // An offset inside a batch returns the whole batch that holds it.
        let fromMiddle = try decodeAll(try log.readBytes(from: 5, maxBytes: 1 << 20))
        #expect(fromMiddle.first?.offset == 3)
        // The log end: nothing to read, no error.
        #expect(try log.read(from: 8, maxBytes: 100).span == nil)
        try log.close()
    }

    @Test func outOfRangeOffsetsAreTypedErrors() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        var a = makeBatch(3)
        _ = try log.append(&a)
        for bad: Int64 in [-1, 4, 1000] {
            #expect { _ = try log.read(from: bad, maxBytes: 100) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
        }
    }

    @Test func maxBytesReturnsWholeBatchesAndAlwaysAtLeastOne() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.indexIntervalBytes = 256
        let log = try openLog(tmp.path, config: config)
        var sizes: [Int] = []
        for i in 0..<50 {
            var batch = makeBatch(4, tag: "b\(i)", valueBytes: 40)
            sizes.append(batch.readableBytes)
            _ = try log.append(&batch)
        }
        let one = try log.read(from: 0, maxBytes: 1).span!
        #expect(one.length == sizes[0])
        let some = try log.read(from: 0, maxBytes: sizes[0] * 3 + 10).span!
        #expect(some.length == sizes[0] * 3)
        var random = SeededRandom(test: "maxBytesReturnsWholeBatchesAndAlwaysAtLeastOne")
        let seed = random.seed
        for _ in 0..<200 {
            let offset = Int64.random(in: 0..<200, using: &random)
            let maxBytes = Int.random(in: 1...5000, using: &random)
            let bytes = try log.readBytes(from: offset, maxBytes: maxBytes)
            var reader = RecordBatchReader(bytes) // throws on a partial batch
            var first: RecordBatch?
            var total = 0
            while let batch = try reader.next() {
                if first == nil { first = batch }
                total += batch.header.totalBytes
            }
            let head = try #require(first, "seed \(seed)")
            #expect(head.header.baseOffset <= offset && head.header.lastOffset >= offset, "seed \(seed)")
            #expect(total <= max(maxBytes, head.header.totalBytes), "seed \(seed)")
        }
    }

    @Test func rollsAtSegmentBytesAndFindsOffsetsAcrossSegments() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 4096
        config.indexIntervalBytes = 512
        let log = try openLog(tmp.path, config: config)
        for i in 0..<300 {
            var batch = makeBatch(3, tag: "r\(i)", valueBytes: 30)
            _ = try log.append(&batch)
        }
        #expect(log.segmentCount > 10)
        #expect(log.endOffset == 900)
        for offset in stride(from: Int64(0), to: 900, by: 7) {
            let records = try decodeAll(try log.readBytes(from: offset, maxBytes: 64))
            let hit = try #require(records.first { $0.offset == offset })
            #expect(String(buffer: hit.value!).hasPrefix("r\(offset / 3)-\(offset % 3)"))
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/t-0")
        #expect(names.contains("00000000000000000000.log"))
        #expect(names.filter { $0.hasSuffix(".log") }.count == log.segmentCount)
        try log.close()
    }

    @Test func cleanReopenKeepsEverything() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 8192
        let log = try openLog(tmp.path, config: config)
        for i in 0..<100 {
            var batch = makeBatch(2, tag: "c\(i)", valueBytes: 50)
            _ = try log.append(&batch)
        }
        let before = try log.readBytes(from: 0, maxBytes: 1 << 20)
        let segments = log.segmentCount
        try log.close()
        let again = try openLog(tmp.path, config: config, clean: true)
        #expect(again.endOffset == 200)
        #expect(again.segmentCount == segments)
        #expect(try again.readBytes(from: 0, maxBytes: 1 << 20) == before)
        var more = makeBatch(1)
        #expect(try again.append(&more).baseOffset == 200)
    }

    @Test func offsetForTimestamp() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 2048
        config.indexIntervalBytes = 128
        let log = try openLog(tmp.path, config: config)
        for i in 0..<100 {
            // Records at 1000 + 10*i + j for j in 0..<5, so offset n has timestamp 1000 + 2n (i*5+j → 10i+j... see below).
            var builder = RecordBatchBuilder(codec: i % 2 == 0 ? .lz4 : .none)
            for j in 0..<5 { builder.append(key: nil, value: [UInt8(j)], timestamp: Int64(1000 + i * 10 + j)) }
            var batch = try builder.build()
            _ = try log.append(&batch)
        }
        #expect(try log.offset(forTimestamp: 0) == 0)
        #expect(try log.offset(forTimestamp: 1000) == 0)
        #expect(try log.offset(forTimestamp: 1003) == 3)
        #expect(try log.offset(forTimestamp: 1005) == 5) // 1005..1009 do not exist: next is batch 1 at 1010 → offset 5
        #expect(try log.offset(forTimestamp: 1012) == 7)
        #expect(try log.offset(forTimestamp: 1994) == 499)
        #expect(try log.offset(forTimestamp: 1995) == nil)
        try log.close()
        let again = try openLog(tmp.path, config: config)
        #expect(try again.offset(forTimestamp: 1507) == 255) // 1505...1509 do not exist: batch 51 starts at 1510
    }

    @Test func recordByTimestampAndMaxTimestamp() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.indexIntervalBytes = 128
        let log = try openLog(tmp.path, config: config)
        // Batch i holds timestamps 1000 + 10i + j; batch 37 carries one record far in the future
        // (offset 37*5+2), so the max timestamp is in neither the first nor the last segment.
        for i in 0..<80 {
            var builder = RecordBatchBuilder(codec: .none)
            for j in 0..<5 { builder.append(key: nil, value: [UInt8(j)], timestamp: i == 37 && j == 2 ? 9000 : Int64(1000 + i * 10 + j)) }
            var batch = try builder.build()
            _ = try log.append(&batch)
        }
        #expect(log.segmentCount > 2)
        #expect(try log.record(atOrAfter: 1005) == TimestampedOffset(offset: 5, timestamp: 1010))
        #expect(try log.record(atOrAfter: 1183) == TimestampedOffset(offset: 93, timestamp: 1183))
        // Past batch 37's early records, the late one (offset 187) is the first at or after.
        #expect(try log.record(atOrAfter: 1403) == TimestampedOffset(offset: 187, timestamp: 9000))
        #expect(try log.record(atOrAfter: 5000) == TimestampedOffset(offset: 187, timestamp: 9000))
        #expect(try log.record(atOrAfter: 9001) == nil)
        #expect(try log.maxTimestampRecord() == TimestampedOffset(offset: 187, timestamp: 9000))
        try log.close()
        let again = try openLog(tmp.path, config: config)
        #expect(try again.maxTimestampRecord() == TimestampedOffset(offset: 187, timestamp: 9000))
        #expect(try again.record(atOrAfter: 1005) == TimestampedOffset(offset: 5, timestamp: 1010))
        #expect(try again.record(atOrAfter: 1789) == TimestampedOffset(offset: 187, timestamp: 9000))
    }

    @Test func retentionByBytesDeletesOldestClosedSegments() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 4096
        config.retentionBytes = 10_000
        config.retentionMillis = -1 // the test records are from 2023: only the size rule may act
        let log = try openLog(tmp.path, config: config)
        for i in 0..<200 {
            var batch = makeBatch(2, tag: "x\(i)", valueBytes: 60)
            _ = try log.append(&batch)
        }
        let before = log.segmentCount
        let deleted = try log.applyRetention(now: PartitionLog.wallClockMillis())
        #expect(deleted > 0 && log.segmentCount == before - deleted)
        #expect(log.sizeBytes >= 10_000 && log.sizeBytes < 10_000 + 4096, "size \(log.sizeBytes), segments \(log.segmentCount)")
        #expect(log.startOffset > 0)
        #expect { _ = try log.read(from: 0, maxBytes: 10) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
        let first = try decodeAll(try log.readBytes(from: log.startOffset, maxBytes: 100)).first
        #expect(first?.offset == log.startOffset)
        // The log start survives a restart (it is the first remaining segment).
        let start = log.startOffset
        try log.close()
        #expect(try openLog(tmp.path, config: config).startOffset == start)
    }

    @Test func retentionByTimeUsesNewestTimestampAndKeepsTheActiveSegment() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 2048
        config.retentionMillis = 60_000
        let log = try openLog(tmp.path, config: config)
        let old: Int64 = 1_000_000
        for i in 0..<40 {
            var batch = makeBatch(2, tag: "o\(i)", timestamp: old, valueBytes: 60)
            _ = try log.append(&batch)
        }
        let oldEnd = log.endOffset
        try log.roll()
        for i in 0..<10 {
            var batch = makeBatch(2, tag: "n\(i)", timestamp: old + 120_000, valueBytes: 60)
            _ = try log.append(&batch)
        }
        // At old + 61 s the old segments are expired, the new ones are not.
        _ = try log.applyRetention(now: old + 61_000 + 100)
        #expect(log.startOffset == oldEnd)
        // Far in the future everything is expired but the active segment stays.
        _ = try log.applyRetention(now: old + 10_000_000)
        #expect(log.segmentCount == 1)
        #expect(log.endOffset == oldEnd + 20)
        // Infinite retention keeps everything.
        var forever = config
        forever.retentionMillis = -1
        log.update(config: forever)
        #expect(try log.applyRetention(now: .max) == 0)
    }

    /// `segment.ms` counts from the segment's first batch timestamp (as Kafka's
    /// rollingBasedTimestamp), so the age survives a restart: a segment opened again after
    /// it came of age rolls at the next append. (Counting from when the process opened
    /// it, as before, never rolled a segment of a broker restarted more often than segment.ms.)
    @Test func segmentMsRollsByAgeAndTheAgeSurvivesARestart() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let now = Atomic<Int64>(1_000_000)
        var config = TopicConfig()
        config.segmentMillis = 1000
        let clock: @Sendable () -> Int64 = { now.load(ordering: .relaxed) }
        let log = try openLog(tmp.path, config: config, clock: clock)
        var a = makeBatch(1, timestamp: 1_000_000)
        _ = try log.append(&a)
        var b = makeBatch(1, timestamp: 1_000_500)
        _ = try log.append(&b)
        #expect(log.segmentCount == 1)
        var c = makeBatch(1, timestamp: 1_001_000)
        _ = try log.append(&c)
        #expect(log.segmentCount == 2, "1000 ms after the segment's first record it rolls")
        var d = makeBatch(1, timestamp: 1_001_400)
        _ = try log.append(&d)
        try log.close()
        // Restarted: the active segment started at 1_001_000 whatever the wall clock says.
        now.store(1_001_500, ordering: .relaxed)
        let again = try openLog(tmp.path, config: config, clock: clock)
        var e = makeBatch(1, timestamp: 1_002_100)
        _ = try again.append(&e)
        #expect(again.segmentCount == 3, "the age counted before the restart was forgotten")
    }

    @Test func oversizedBatchIsRefused() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.maxMessageBytes = 1000
        let log = try openLog(tmp.path, config: config)
        var big = makeBatch(1, valueBytes: 2000)
        #expect { _ = try log.append(&big) } throws: { ($0 as? StorageError)?.code == .recordTooLarge }
        var bad = makeBatch(2)
        bad.setInteger(UInt8(0xFF), at: bad.writerIndex - 1)
        #expect { _ = try log.append(&bad) } throws: { ($0 as? RecordsError)?.code == .badCRC }
        #expect(log.endOffset == 0)
    }

    /// Each round, 64 appenders' batches are written, then all 64 wait for durability at once:
    /// they share the fsyncs instead of one each. The rounds fix the order (every append before
    /// any wait), so the count does not depend on how the machine schedules the tasks (free
    /// running appenders on a loaded machine once needed 660 fsyncs).
    @Test func groupCommitSharesFsyncsAmongConcurrentAppenders() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let log = try openLog(tmp.path, io: io)
        let appenders = 64
        let rounds = 20
        for r in 0..<rounds {
            var lastOffsets: [Int64] = []
            for a in 0..<appenders {
                var batch = makeBatch(1, tag: "g\(a)-\(r)")
                lastOffsets.append(try log.append(&batch).lastOffset)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for last in lastOffsets {
                    group.addTask {
                        try await log.waitUntilDurable(last + 1)
                        #expect(log.durableOffset > last)
                    }
                }
                try await group.waitForAll()
            }
        }
        #expect(log.endOffset == Int64(appenders * rounds))
        #expect(log.durableOffset == log.endOffset)
        // One fsync per acknowledged append would be 1280; group commit shares them.
        #expect(io.fsyncCount < appenders * rounds / 8, "fsyncs: \(io.fsyncCount)")
        print("group commit: \(io.fsyncCount) fsyncs for \(appenders * rounds) acknowledged appends")
    }

    /// `flush.messages` hands an fsync to the background once enough messages arrived
    /// (and not before); the test runs that background work itself: no sleeps.
    @Test func flushMessagesPolicyFsyncsInTheBackground() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.flushMessages = 10
        let executor = ManualExecutor()
        let log = try openLog(tmp.path, config: config, executor: executor.executor)
        var first = makeBatch(5)
        _ = try log.append(&first)
        #expect(executor.pending == 0, "5 messages are below flush.messages")
        var second = makeBatch(5)
        _ = try log.append(&second)
        #expect(executor.pending == 1)
        #expect(log.durableOffset == 0)
        executor.drain()
        #expect(log.durableOffset == 10)
    }
}

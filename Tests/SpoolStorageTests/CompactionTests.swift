#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// The log cleaner on real files: the last record per key stays at its offset, batches keep
/// their codec, tombstones last `delete.retention.ms` after their first clean, the active
/// segment is never touched, keyless records are refused, and the result survives re-opening.
@Suite struct CompactionTests {
    static let codecs: [CompressionCodec] = [.none, .lz4, .zstd, .snappy, .gzip]

    func compactConfig() throws -> TopicConfig {
        try TopicConfig(["cleanup.policy": "compact", "segment.bytes": "1024", "index.interval.bytes": "100",
                         "delete.retention.ms": "60000", "min.cleanable.dirty.ratio": "0.01"])
    }

    /// Appends rounds of every key (one batch per round, codecs in turn), rolling segments.
    /// Returns the expected last (offset, value) per key.
    func fill(_ log: PartitionLog, keys: Int, rounds: Int, tombstone: String? = nil, at clock: Int64) throws -> [String: (Int64, String?)] {
        var expected: [String: (Int64, String?)] = [:]
        for round in 0..<rounds {
            var records: [(key: String, value: String?)] = (0..<keys).map { ("k\($0)", "r\(round)-k\($0)") }
            if round == rounds - 1, let tombstone { records[Int(tombstone.dropFirst())!].value = nil }
            var batch = keyedBatch(records, codec: Self.codecs[round % Self.codecs.count], timestamp: clock)
            let result = try log.append(&batch)
            for (i, r) in records.enumerated() { expected[r.key] = (result.baseOffset + Int64(i), r.value) }
        }
        try log.flush()
        return expected
    }

    @Test func keepsTheLastRecordPerKeyAtItsOffset() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let clock = Atomic<Int64>(1_700_000_000_000)
        let now: @Sendable () -> Int64 = { clock.load(ordering: .relaxed) }
        var log = try openLog(dir.path, config: try compactConfig(), clock: now)
        let expected = try fill(log, keys: 8, rounds: 30, tombstone: "k3", at: now())
        try log.roll()
        try log.flush()
        let before = try readEverything(log)
        let segmentsBefore = log.segmentCount
        let result = try #require(try log.clean(now: now(), force: true))
        #expect(result.recordsRemoved == Int64(before.count - 8))
        #expect(result.segmentsCleaned == segmentsBefore - 1)
        // The first clean copies each segment alone (their sizes fill a segment); the next
        // one merges the small cleaned segments.
        _ = try log.clean(now: now(), force: true)
        #expect(log.segmentCount < segmentsBefore, "cleaned segments are merged")
        func check(_ log: PartitionLog) throws {
            let after = try readEverything(log)
            #expect(after.count == 8, "one record per key: \(after.map(\.offset))")
            for (key, (offset, value)) in expected {
                let got = try #require(lastByKey(after)[key])
                #expect(got.offset == offset && got.value == value, "\(key): \(got)")
                // The batch keeps the codec it was produced with.
                #expect(got.codec == before.first { $0.offset == offset }!.codec)
            }
            #expect(log.endOffset == Int64(before.count))
        }
        try check(log)
        // Re-opened cleanly and after a crash (every segment re-checked), the holes are accepted.
        try log.close()
        log = try openLog(dir.path, config: try compactConfig(), clock: now)
        try check(log)
        try log.close()
        try Directory.removeFile(dir.path + "/t-0/recovery-point", io: PosixFileIO())
        log = try openLog(dir.path, config: try compactConfig(), clean: false, clock: now)
        try check(log)

        // The tombstone stays until delete.retention.ms after the clean that first saw it.
        var more = keyedBatch([("k0", "late")], timestamp: now())
        _ = try log.append(&more)
        try log.roll()
        try log.flush()
        _ = try log.clean(now: now(), force: true)
        let afterSecond = lastByKey(try readEverything(log))
        #expect(afterSecond["k3"] != nil && afterSecond["k3"]?.value == nil, "the tombstone is still there")
        clock.add(60_001, ordering: .relaxed)
        #expect(log.cleanability(now: now()).due, "a tombstone past its retention makes a clean due")
        _ = try log.clean(now: now())
        let final = try readEverything(log)
        #expect(lastByKey(final)["k3"] == nil, "the tombstone is gone after delete.retention.ms")
        #expect(lastByKey(final)["k0"]?.value == "late")
        #expect(final.count == 7, "7 keys left: \(final.map(\.offset))")
        try log.close()
    }

    @Test func neverTouchesTheActiveSegmentOrUndurableData() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let log = try openLog(dir.path, config: try compactConfig())
        var batch = keyedBatch([("a", "1"), ("a", "2"), ("a", "3")])
        _ = try log.append(&batch)
        try log.flush()
        #expect(try log.clean(now: PartitionLog.wallClockMillis(), force: true) == nil, "only the active segment: nothing to clean")
        #expect(try readEverything(log).count == 3)
        try log.close()
    }

    @Test func aSpanOfAReplacedSegmentIsRefusedNotMisread() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let log = try openLog(dir.path, config: try compactConfig())
        var first = keyedBatch([("once", "kept")]) // segment 0 keeps a record after the clean
        _ = try log.append(&first)
        _ = try fill(log, keys: 4, rounds: 30, at: 1_700_000_000_000)
        try log.roll()
        try log.flush()
        let span = try #require(try log.read(from: 0, maxBytes: 1 << 20).span)
        _ = try #require(try log.clean(now: PartitionLog.wallClockMillis(), force: true))
        // Same path, new file: the old span's positions mean nothing in it.
        #expect(span.path == (try #require(try log.read(from: 0, maxBytes: 1 << 20).span)).path)
        do {
            let fd = try log.openDescriptor(for: span)
            close(fd)
            Issue.record("a span of the replaced segment was opened")
        } catch let error as StorageError {
            #expect(error.code == .closed, "retriable, not out of range: \(error)")
        }
        try log.close()
    }

    @Test func compactionLagsDecideWhatIsCleanable() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var config = try compactConfig()
        config.minCompactionLagMillis = 3_600_000
        config.minCleanableDirtyRatio = 0.99
        let clock = Atomic<Int64>(1_700_000_000_000)
        let now: @Sendable () -> Int64 = { clock.load(ordering: .relaxed) }
        let log = try openLog(dir.path, config: config, clock: now)
        _ = try fill(log, keys: 4, rounds: 20, at: now())
        try log.roll()
        try log.flush()
        // Younger than min.compaction.lag.ms: not cleanable, even when forced.
        #expect(log.cleanability(now: now()).cleanableBytes == 0)
        #expect(try log.clean(now: now(), force: true) == nil)
        clock.add(3_700_000, ordering: .relaxed)
        let how = log.cleanability(now: now())
        #expect(how.cleanableBytes > 0 && how.dirtyRatio == 1 && how.due, "\(how)")
        _ = try #require(try log.clean(now: now()))
        #expect(!log.cleanability(now: now()).due, "nothing dirty after the clean")
        // max.compaction.lag.ms makes a clean due below the dirty ratio.
        config.minCompactionLagMillis = 0
        config.minCleanableDirtyRatio = 1
        config.maxCompactionLagMillis = 1000
        log.update(config: config)
        var more = keyedBatch([("k0", "again")], timestamp: now())
        _ = try log.append(&more)
        clock.add(10, ordering: .relaxed)
        try log.roll()
        try log.flush()
        #expect(!log.cleanability(now: now()).due, "a small dirty share, not overdue yet")
        clock.add(2000, ordering: .relaxed)
        #expect(log.cleanability(now: now()).due, "overdue by max.compaction.lag.ms")
        try log.close()
    }

    @Test func refusesRecordsWithoutAKeyOnCompactedTopics() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let log = try openLog(dir.path, config: try compactConfig())
        var keyless = makeBatch(2)
        #expect(throws: StorageError.self) { try log.append(&keyless) }
        do {
            _ = try log.validate(keyless)
        } catch let error as StorageError {
            #expect(error.code == .invalidRecord)
        }
        var keyed = keyedBatch([("a", "1")])
        _ = try log.append(&keyed)
        try log.close()
        // A delete-policy topic takes keyless records as before.
        let plain = TempDir()
        defer { plain.cleanup() }
        let other = try openLog(plain.path)
        var again = makeBatch(2)
        _ = try other.append(&again)
        try other.close()
    }

    @Test func compactOnlyTopicsAreNotDeletedByRetention() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var config = try compactConfig()
        config.retentionMillis = 1
        let log = try openLog(dir.path, config: config)
        _ = try fill(log, keys: 4, rounds: 20, at: 1_000)
        try log.roll()
        #expect(try log.applyRetention(now: PartitionLog.wallClockMillis()) == 0)
        // A segment the cleaner emptied goes with the next retention run.
        _ = try log.clean(now: PartitionLog.wallClockMillis(), force: true)
        let before = log.segmentCount
        #expect(try log.applyRetention(now: PartitionLog.wallClockMillis()) >= 1 && log.segmentCount < before)
        #expect(lastByKey(try readEverything(log)).count == 4)
        try config.set("cleanup.policy", "compact,delete")
        log.update(config: config)
        #expect(try log.applyRetention(now: PartitionLog.wallClockMillis()) > 0)
        try log.close()
    }

    @Test func topicConfigsAreValidatedAndShown() throws {
        let config = try TopicConfig(["cleanup.policy": "compact,delete", "delete.retention.ms": "100", "min.cleanable.dirty.ratio": "0.25",
                                      "min.compaction.lag.ms": "5", "max.compaction.lag.ms": "1000", "message.format.version": "0.10.0"])
        #expect(config.cleanupPolicy == CleanupPolicy(compact: true, delete: true))
        #expect(config.entries["cleanup.policy"] == "compact,delete")
        #expect(config.entries["min.cleanable.dirty.ratio"] == "0.25")
        #expect(config.entries["message.format.version"] == "0.10.0")
        #expect(CleanupPolicy(name: "delete, compact") == CleanupPolicy(compact: true, delete: true))
        for bad in [("cleanup.policy", "shred"), ("min.cleanable.dirty.ratio", "1.5"), ("delete.retention.ms", "-1"), ("max.compaction.lag.ms", "0")] {
            #expect(throws: StorageError.self) { _ = try TopicConfig([bad.0: bad.1]) }
        }
    }

    @Test func throttlePacesTheCleaner() throws {
        let throttle = CleanerThrottle(bytesPerSecond: 1_000_000)
        throttle.reset()
        let started = ContinuousClock.now
        for _ in 0..<10 { throttle.paced(20_000) } // 200 kB at 1 MB/s: about 0.2 s
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(180) && elapsed < .seconds(2), "\(elapsed)")
    }
}

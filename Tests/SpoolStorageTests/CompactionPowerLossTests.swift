import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import SpoolTestSupport
import Synchronization
import Testing

/// The power-loss simulator applied to the log cleaner: a seeded workload of keyed records
/// (acks=all, segments rolled, tombstones among them) is cleaned on a `SimulatedDisk` whose
/// power goes out at the 1st, 2nd, … operation of the clean — every step of it: the
/// `.cleaned` write and fsync, the rename to `.swap`, each removal of an original, the
/// rename into place, the checkpoint — until a clean runs to its end. The disk as it could
/// be after each cut is opened again (crash recovery, which finishes or undoes the swap),
/// and must read back every record as it was appended (value at its own offset, offsets
/// increasing), with every acknowledged key's last value present and nothing acknowledged
/// lost; a further, uncut clean must then work too.
///
/// Rerun one seed: `SPOOL_COMPACTION_POWER_LOSS_SEED=<seed> swift test --filter CompactionPowerLossTests`.
@Suite struct CompactionPowerLossTests {
    static let seedCount: UInt64 = 5

    @Test func everyCrashPointOfACleanLeavesALogWithEveryAcknowledgedLastValue() throws {
        let seeds: [UInt64] = ProcessInfo.processInfo.environment["SPOOL_COMPACTION_POWER_LOSS_SEED"]
            .flatMap(UInt64.init).map { [$0] } ?? Array(0..<Self.seedCount)
        var cuts = 0
        var failures: [String] = []
        for seed in seeds {
            var step = 1
            while true {
                var run = CompactionCrashRun(seed: seed)
                let outcome = run.run(cutAt: step)
                cuts += 1
                if !outcome.problems.isEmpty {
                    failures.append("seed \(seed) cut at operation \(step): \(outcome.problems.prefix(3).joined(separator: "; "))")
                    print("compaction power-loss seed \(seed), cut \(step) FAILED (rerun: SPOOL_COMPACTION_POWER_LOSS_SEED=\(seed)): \(outcome.problems.prefix(5))")
                }
                if outcome.cleanFinished || step > 400 || failures.count >= 5 { break }
                step += 1
            }
            if failures.count >= 5 { break }
        }
        print("compaction power-loss simulator: \(seeds.count) seeds, \(cuts) cut points, \(failures.count) failed")
        #expect(failures.isEmpty, "\(failures)")
        #expect(cuts > Int(seeds.count) * 10, "the clean has many steps to cut")
    }
}

/// One workload, one cut, one recovery.
struct CompactionCrashRun {
    let seed: UInt64
    var random: SeededRandom
    let disk = SimulatedDisk()
    let clock = VirtualClock()
    /// The value appended at each offset (nil: a tombstone), and each offset's key.
    var appended: [Int64: (key: String, value: String?)] = [:]
    var acknowledgedEnd: Int64 = 0

    init(seed: UInt64) {
        self.seed = seed
        random = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 7)
    }

    var config: TopicConfig {
        var c = TopicConfig()
        c.cleanupPolicy = .compactOnly
        c.segmentBytes = 1024
        c.indexIntervalBytes = 120
        c.deleteRetentionMillis = 1000
        c.minCleanableDirtyRatio = 0
        return c
    }

    func open(_ disk: SimulatedDisk, clean: Bool) throws -> PartitionLog {
        try PartitionLog(directory: "/data/t-0", topic: "t", partition: 0, config: config,
                         files: FileDescriptorCache(capacity: 8, io: disk), cleanShutdown: clean, clock: clock.now,
                         executor: ManualExecutor().executor)
    }

    /// Appends `batches` batches of random keys (a few tombstones), acknowledging each.
    mutating func produce(_ log: PartitionLog, batches: Int) throws {
        let codecs: [CompressionCodec] = [.none, .lz4, .zstd, .snappy, .gzip]
        for _ in 0..<batches {
            clock.millis.add(50, ordering: .relaxed)
            let n = Int.random(in: 1...6, using: &random)
            var records: [(key: String, value: String?)] = []
            for _ in 0..<n {
                let key = "k\(Int.random(in: 0..<12, using: &random))"
                let tombstone = Int.random(in: 0..<8, using: &random) == 0
                records.append((key, tombstone ? nil : "v\(Int.random(in: 0..<1_000_000, using: &random))"))
            }
            var batch = keyedBatch(records, codec: codecs.randomElement(using: &random)!, timestamp: clock.now())
            let result = try log.append(&batch)
            for (i, r) in records.enumerated() { appended[result.baseOffset + Int64(i)] = r }
            try log.flush()
            acknowledgedEnd = result.lastOffset + 1
        }
    }

    mutating func run(cutAt step: Int) -> (problems: [String], cleanFinished: Bool) {
        var problems: [String] = []
        var finished = false
        do {
            let log = try open(disk, clean: true)
            try produce(log, batches: Int.random(in: 25...45, using: &random))
            // Some runs clean once first, so the cut clean meets cleaned segments and tombstones past retention.
            if Bool.random(using: &random) {
                try log.roll()
                try log.flush()
                _ = try log.clean(now: clock.now(), force: true)
                clock.millis.add(2000, ordering: .relaxed)
                try produce(log, batches: Int.random(in: 5...15, using: &random))
            }
            try log.roll()
            try log.flush()
            disk.crash(atOperation: step)
            do {
                _ = try log.clean(now: clock.now(), force: true)
                finished = !disk.crashed
            } catch {
                // The power went out (or the partition stopped): what is on disk is judged below.
            }
        } catch {
            if !disk.crashed { problems.append("workload failed before the cut: \(error)") }
        }
        var lossRandom = SeededRandom(seed: seed &+ UInt64(step) &* 31)
        let after = disk.powerLoss(&lossRandom)
        do {
            let log = try open(after, clean: false)
            problems += check(log, "after the cut")
            _ = try log.clean(now: clock.now(), force: true)
            problems += check(log, "after a further clean")
            try log.close()
            let again = try open(after, clean: true)
            problems += check(again, "re-opened")
            try again.close()
        } catch {
            problems.append("recovery failed: \(error)")
        }
        return (problems, finished)
    }

    func check(_ log: PartitionLog, _ when: String) -> [String] {
        var problems: [String] = []
        let records: [ReadRecord]
        do { records = try readEverything(log) } catch { return ["\(when): read failed: \(error)"] }
        if log.endOffset < acknowledgedEnd { problems.append("\(when): log ends at \(log.endOffset), acknowledged up to \(acknowledgedEnd)") }
        var previous: Int64 = -1
        for r in records {
            if r.offset <= previous { problems.append("\(when): offset \(r.offset) after \(previous)") }
            previous = r.offset
            guard let original = appended[r.offset] else {
                problems.append("\(when): offset \(r.offset) was never appended")
                continue
            }
            if original.key != r.key || original.value != r.value {
                problems.append("\(when): offset \(r.offset) holds \(String(describing: r.key))=\(String(describing: r.value)), appended \(original)")
            }
        }
        // Every key's last acknowledged record is there (a tombstone may be purged).
        var lastOffset: [String: Int64] = [:]
        for (offset, r) in appended where offset < acknowledgedEnd {
            if offset > lastOffset[r.key, default: -1] { lastOffset[r.key] = offset }
        }
        let present = Set(records.map(\.offset))
        for (key, offset) in lastOffset where appended[offset]!.value != nil && !present.contains(offset) {
            problems.append("\(when): the last value of \(key) (offset \(offset)) is missing")
        }
        return problems
    }
}

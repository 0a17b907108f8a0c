import Foundation
import SpoolTestSupport
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// The power-loss simulator: a seeded random workload (acks=all appends, rolls, retention,
/// topic creation and deletion, offset commits, clean restarts, spells of a full disk
/// that stop partitions until space is back) runs on a `SimulatedDisk`
/// that loses power at a seeded random operation; the disk as it could be after the power
/// loss is opened again, and recovery must yield consistent logs holding every
/// acknowledged record, every acknowledged topic change and every synced commit. One run
/// in three loses power a second time during that recovery. Some appends are transactional
/// and followed by COMMIT/ABORT markers (an ABORT recorded in the `.txnindex` as the broker
/// does): after recovery every segment's `.txnindex` must match the markers in the log.
///
/// A failing seed is printed and reproduces exactly: `SPOOL_POWER_LOSS_SEED=<seed> swift
/// test --filter PowerLossTests` runs that seed alone (the workload is single-threaded and
/// background work runs only when the workload drains it).
@Suite struct PowerLossTests {
    /// Seeds per test run: each is one crash point.
    static let seedCount: UInt64 = 2000

    @Test func recoveryKeepsEverythingAcknowledgedAtEveryCrashPoint() throws {
        let seeds: [UInt64]
        if let one = ProcessInfo.processInfo.environment["SPOOL_POWER_LOSS_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            seeds = Array(0..<Self.seedCount)
        }
        var crashedDuringWorkload = 0
        var operations = 0
        var failed: [UInt64] = []
        var abortsChecked = 0
        for seed in seeds {
            var run = PowerLossRun(seed: seed)
            let problems = run.run()
            if run.crashed { crashedDuringWorkload += 1 } else { operations += run.operations }
            abortsChecked += run.abortsChecked
            if !problems.isEmpty {
                failed.append(seed)
                print("power-loss seed \(seed) FAILED (rerun: SPOOL_POWER_LOSS_SEED=\(seed) swift test --filter PowerLossTests):")
                for problem in problems.prefix(10) { print("  \(problem)") }
                Issue.record("power-loss seed \(seed): \(problems.prefix(3).joined(separator: "; "))")
                if failed.count >= 5 { break }
            }
        }
        print("power-loss simulator: \(seeds.count) seeds (\(seeds.first!)...\(seeds.last!)), \(crashedDuringWorkload) crashed mid-workload (the others ran \(operations / max(1, seeds.count - crashedDuringWorkload)) operations on average), \(abortsChecked) ABORT markers checked against their .txnindex, \(failed.count) failed")
        // The crash points must mostly land inside the workload, or the test checks little.
        #expect(seeds.count < 10 || crashedDuringWorkload * 10 >= seeds.count * 8)
        #expect(seeds.count < 10 || abortsChecked >= seeds.count / 4, "the workload aborts transactions")
    }
}

/// The time as the storage under test sees it: moved on by the workload.
final class VirtualClock: Sendable {
    let millis = Atomic<Int64>(1_700_000_000_000)
    var now: @Sendable () -> Int64 { { self.millis.load(ordering: .relaxed) } }
}

/// One seeded run: workload, power loss, recovery, checks.
struct PowerLossRun {
    let seed: UInt64
    var random: SeededRandom
    let disk = SimulatedDisk()
    var executor = ManualExecutor()
    var crashed = false
    var operations = 0
    let clock = VirtualClock()
    /// Writes fail with ENOSPC past a capacity (a full disk) while set.
    var diskFull = false
    /// Topics whose create or delete failed on the full disk: either outcome is fine.
    var ambiguous: Set<String> = []
    var problems: [String] = []
    var trace: [String] = []

    /// Topics whose creation returned, with their partition count (names are never reused).
    var topics: [String: Int32] = [:]
    var deleted: Set<String> = []
    /// A create or delete cut by the crash: either outcome is fine.
    var topicInFlight: String?
    var nextTopic = 0
    /// Records appended, by partition and offset (the value each must have).
    var appended: [TopicPartition: [Int64: String]] = [:]
    /// Offsets below which a flush returned: acknowledged with acks=all.
    var acknowledgedEnd: [TopicPartition: Int64] = [:]
    /// Committed offsets whose commit returned, and the commit cut by the crash.
    var commits: [String: [TopicPartition: CommittedOffset]] = [:]
    var commitInFlight: (group: String, ifDone: [TopicPartition: CommittedOffset])?
    /// Per partition, the first offset of its producer's open transaction.
    var openTransactions: [TopicPartition: Int64] = [:]
    /// ABORT markers found in the recovered logs (each checked against its `.txnindex`).
    var abortsChecked = 0

    static let operationsBudget = 500
    static let steps = 70

    init(seed: UInt64) {
        self.seed = seed
        random = SeededRandom(seed: seed &* 0x2545_F491_4F6C_DD1D &+ 1)
    }

    var config: StorageConfig {
        var config = StorageConfig(dataDirectory: "/data")
        config.topicDefaults.retentionMillis = -1
        config.topicDefaults.segmentBytes = 1024
        config.topicDefaults.retentionBytes = 2500
        config.topicDefaults.indexIntervalBytes = 150
        config.maxOpenFiles = 8
        config.closeConcurrency = 1 // one thread: the crash point must land in the same place on every run
        return config
    }

    mutating func run() -> [String] {
        let budget = ProcessInfo.processInfo.environment["SPOOL_POWER_LOSS_BUDGET"].flatMap(Int.init) ?? Self.operationsBudget
        disk.crash(atOperation: Int.random(in: 1...budget, using: &random))
        var storage: LogManager?
        do {
            storage = try LogManager(config: config, io: disk, executor: executor.executor, clock: clock.now)
            for _ in 0..<Self.steps {
                clock.millis.add(400, ordering: .relaxed)
                do {
                    try step(&storage!)
                } catch {
                    // On a full disk a call may fail (and say so), and a partition it stopped
                    // refuses calls until an append retries; nothing acknowledged may be lost.
                    let fullDisk = (error as? StorageError)?.errno == ENOSPC
                    guard (diskFull || fullDisk) && !disk.crashed else { throw error }
                    trace.append("failed on a full disk: \(error)")
                    commitInFlight = nil
                    if let name = topicInFlight { ambiguous.insert(name) }
                    topicInFlight = nil
                }
            }
        } catch {
            if !disk.crashed { problems.append("workload failed without a crash: \(error); trace: \(trace.suffix(40))") }
        }
        crashed = disk.crashed
        operations = disk.operations
        // In-memory log starts at the crash: retention may be undone by the crash, never advanced.
        var startsAtCrash: [TopicPartition: Int64] = [:]
        if let storage {
            for (name, count) in topics where !deleted.contains(name) {
                for p in 0..<count {
                    if let log = try? storage.partition(TopicPartition(name, p)) { startsAtCrash[TopicPartition(name, p)] = log.startOffset }
                }
            }
        }
        let after = disk.powerLoss(&random)
        check(after, startsAtCrash: startsAtCrash)
        return problems
    }

    mutating func live() -> [String] { topics.keys.filter { !deleted.contains($0) && !ambiguous.contains($0) }.sorted() }

    mutating func pickPartition() -> TopicPartition? {
        let names = live()
        guard let name = names.randomElement(using: &random) else { return nil }
        return TopicPartition(name, Int32.random(in: 0..<topics[name]!, using: &random))
    }

    mutating func step(_ storage: inout LogManager) throws {
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<40:
            guard let tp = pickPartition() else { return try createTopic(storage) }
            let log = try storage.partition(tp)
            let count = Int.random(in: 1...4, using: &random)
            // Three appends in ten are transactional (producer 1000 + partition).
            let transactional = Int.random(in: 0..<10, using: &random) < 3
            var builder = RecordBatchBuilder(codec: Bool.random(using: &random) ? .none : .lz4,
                                             producerId: transactional ? 1000 + Int64(tp.partition) : -1, producerEpoch: transactional ? 0 : -1)
            builder.isTransactional = transactional
            let base = log.endOffset
            var values: [Int64: String] = [:]
            for i in 0..<count {
                let value = "\(tp)@\(base + Int64(i))"
                values[base + Int64(i)] = value
                builder.append(key: nil, value: ByteBuffer(string: value + String(repeating: ".", count: Int.random(in: 0...60, using: &random))),
                               timestamp: 1_700_000_000_000 + base + Int64(i))
            }
            var batch = try builder.build()
            trace.append("append \(tp) \(base)+\(count)")
            let result = try log.append(&batch)
            guard result.baseOffset == base else { throw StorageError(.corrupt, "append at \(result.baseOffset), expected \(base)") }
            appended[tp, default: [:]].merge(values) { _, new in new }
            if transactional, openTransactions[tp] == nil { openTransactions[tp] = base }
            if let first = openTransactions[tp], Int.random(in: 0..<10, using: &random) < 4 {
                let abort = Bool.random(using: &random)
                let pid = 1000 + Int64(tp.partition)
                var marker = TransactionIndexTests.marker(pid, abort: abort)
                trace.append("\(abort ? "abort" : "commit") \(tp) \(first)")
                let at = try log.append(&marker).baseOffset
                openTransactions[tp] = nil
                if abort {
                    try log.appendAbortedTransaction(AbortedTransaction(producerId: pid, firstOffset: first, lastOffset: at, lastStableOffset: at + 1))
                }
            }
            if Int.random(in: 0..<10, using: &random) < 6 {
                try log.flush() // acks=all
                acknowledgedEnd[tp] = log.endOffset
            }
        case 40..<55:
            let group = "g\(Int.random(in: 0..<3, using: &random))"
            var offsets: [TopicPartition: CommittedOffset] = [:]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let value = Int64.random(in: 0..<1_000_000, using: &random)
                offsets[TopicPartition("c\(Int.random(in: 0..<2, using: &random))", Int32.random(in: 0..<3, using: &random))] =
                    CommittedOffset(offset: value, metadata: "m\(value)", commitTimestamp: value)
            }
            let ifDone = (commits[group] ?? [:]).merging(offsets) { _, new in new }
            commitInFlight = (group, ifDone)
            trace.append("commit \(group)")
            try storage.offsets.commit(group: group, offsets)
            commits[group] = ifDone
            commitInFlight = nil
        case 55..<63:
            guard let tp = pickPartition() else { return }
            trace.append("roll \(tp)")
            try storage.partition(tp).roll()
        case 63..<71:
            trace.append("drain")
            executor.drain()
        case 71..<79:
            trace.append("retention")
            storage.runRetention(now: 1_800_000_000_000)
        case 79..<85:
            try createTopic(storage)
        case 85..<89:
            guard let name = live().randomElement(using: &random) else { return }
            topicInFlight = name
            trace.append("delete \(name)")
            for tp in openTransactions.keys where tp.topic == name { openTransactions[tp] = nil }
            try storage.deleteTopic(name)
            deleted.insert(name)
            topicInFlight = nil
        case 89..<93:
            trace.append("restart")
            var closedCleanly = true
            do { try storage.close() } catch {
                // A partition stopped by the full disk: no clean-shutdown marker.
                guard (diskFull || (error as? StorageError)?.errno == ENOSPC) && !disk.crashed else { throw error }
                closedCleanly = false
            }
            executor = ManualExecutor()
            storage = try LogManager(config: config, io: disk, executor: executor.executor, clock: clock.now)
            guard storage.openedClean == closedCleanly else { throw StorageError(.corrupt, "a clean restart was not seen as clean") }
        case 93..<95:
            trace.append("disk full")
            disk.fill(leaving: Int.random(in: 0...3000, using: &random))
            diskFull = true
        case 95..<97:
            trace.append("space back")
            disk.setCapacity(nil)
            diskFull = false
        default:
            for name in live() {
                for p in 0..<topics[name]! {
                    let tp = TopicPartition(name, p)
                    let log = try storage.partition(tp)
                    trace.append("flush \(tp)")
                    try log.flush()
                    acknowledgedEnd[tp] = log.endOffset
                }
            }
        }
    }

    mutating func createTopic(_ storage: LogManager) throws {
        let name = "t\(nextTopic)"
        nextTopic += 1
        let partitions = Int32.random(in: 1...3, using: &random)
        topicInFlight = name
        trace.append("create \(name)")
        try storage.createTopic(name, partitions: partitions)
        topics[name] = partitions
        topicInFlight = nil
    }

    mutating func check(_ crashed: SimulatedDisk, startsAtCrash: [TopicPartition: Int64]) {
        var after = crashed
        if Int.random(in: 0..<3, using: &random) == 0 {
            // One run in three loses power again while recovering: recovery's own writes
            // (truncations, deleted segments, rebuilt indexes, fsyncs) must be crash-safe too.
            after.crash(atOperation: Int.random(in: 1...150, using: &random))
            trace.append("power loss during recovery")
            _ = try? LogManager(config: config, io: after, executor: ManualExecutor().executor)
            after = after.powerLoss(&random)
        }
        let storage: LogManager
        do {
            storage = try LogManager(config: config, io: after, executor: ManualExecutor().executor, clock: clock.now)
        } catch {
            problems.append("recovery failed: \(error); trace: \(trace.suffix(6))")
            return
        }
        defer { try? storage.close() }
        // Topics: every acknowledged creation and deletion holds; only the one in flight may go either way.
        var recoveredTopics: [String: Int32] = [:]
        for definition in storage.topics.all { recoveredTopics[definition.name] = definition.partitions }
        for (name, count) in topics where !deleted.contains(name) && name != topicInFlight && !ambiguous.contains(name) {
            if recoveredTopics[name] != count { problems.append("topic \(name) (\(count) partitions) came back as \(String(describing: recoveredTopics[name]))") }
        }
        for name in deleted where name != topicInFlight && !ambiguous.contains(name) {
            if recoveredTopics[name] != nil { problems.append("deleted topic \(name) came back") }
        }
        for name in recoveredTopics.keys where topics[name] == nil && name != topicInFlight && !ambiguous.contains(name) {
            problems.append("unknown topic \(name) appeared")
        }
        // Logs: consistent, and holding every acknowledged record.
        for (name, count) in recoveredTopics {
            for p in 0..<count {
                let tp = TopicPartition(name, p)
                guard let log = try? storage.partition(tp) else {
                    problems.append("\(tp) missing")
                    continue
                }
                checkLog(log, tp, mustHold: !deleted.contains(name) && name != topicInFlight && !ambiguous.contains(name),
                         startAtCrash: startsAtCrash[tp])
            }
        }
        // Commits: exactly the synced ones; the one in flight whole or not at all.
        let groups = Set(commits.keys).union(storage.offsets.groups).union(commitInFlight.map { [$0.group] } ?? [])
        for group in groups {
            let found = storage.offsets.committed(group: group)
            let expected = commits[group] ?? [:]
            if let commitInFlight, commitInFlight.group == group {
                if found != expected && found != commitInFlight.ifDone { problems.append("group \(group) (commit in flight): \(found)") }
            } else if found != expected {
                problems.append("group \(group): \(found), expected \(expected)")
            }
        }
        // The recovered store takes new work.
        if let name = recoveredTopics.keys.sorted().first, let log = try? storage.partition(TopicPartition(name, 0)) {
            var batch = makeBatch(1, tag: "after")
            do {
                _ = try log.append(&batch)
                try log.flush()
            } catch {
                problems.append("append after recovery failed: \(error)")
            }
        }
    }

    mutating func checkLog(_ log: PartitionLog, _ tp: TopicPartition, mustHold: Bool, startAtCrash: Int64?) {
        let start = log.startOffset
        let end = log.endOffset
        if let startAtCrash, mustHold, start > startAtCrash {
            problems.append("\(tp): log starts at \(start), after \(startAtCrash) where it started at the crash")
        }
        var offset = start
        do {
            while offset < end {
                var reader = RecordBatchReader(try log.readBytes(from: offset, maxBytes: 1 << 16), allowPartialTail: true)
                var records: [Record] = []
                while let batch = try reader.next() {
                    // A transaction marker takes an offset but is no record of the workload.
                    records += try batch.records().map { r in
                        guard batch.header.isControl else { return r }
                        var marker = r
                        marker.value = ByteBuffer(string: "\(tp)@\(r.offset)")
                        return marker
                    }
                }
                guard let first = records.first(where: { $0.offset >= offset }) else {
                    problems.append("\(tp): nothing readable at \(offset) (log \(start)..<\(end))")
                    return
                }
                for record in records where record.offset >= offset {
                    if record.offset != offset {
                        problems.append("\(tp): offset \(record.offset) where \(offset) was expected")
                        return
                    }
                    let value = String(buffer: record.value!).prefix { $0 != "." }
                    if value != "\(tp)@\(offset)" {
                        problems.append("\(tp): offset \(offset) holds '\(value)'")
                        return
                    }
                    offset += 1
                }
                _ = first
            }
        } catch {
            problems.append("\(tp): reading at \(offset) failed: \(error)")
            return
        }
        checkTransactionIndex(log, tp)
        guard mustHold, let acknowledged = acknowledgedEnd[tp] else { return }
        if end < acknowledged {
            problems.append("\(tp): log ends at \(end), but records up to \(acknowledged) were acknowledged; trace: \(trace.suffix(8))")
        }
    }

    /// The `.txnindex` entries match the ABORT markers of the log: the same markers, each
    /// with its transaction's first offset (an entry whose transaction began in a segment
    /// retention deleted may keep that first offset, or be dropped by a rebuild).
    mutating func checkTransactionIndex(_ log: PartitionLog, _ tp: TopicPartition) {
        let start = log.startOffset
        var open: [Int64: Int64] = [:]
        var expected: [Int64: AbortedTransaction] = [:]
        do {
            var offset = start
            while offset < log.endOffset {
                var reader = RecordBatchReader(try log.readBytes(from: offset, maxBytes: 1 << 16), allowPartialTail: true)
                var moved = false
                while let batch = try reader.next() {
                    let h = batch.header
                    guard h.nextOffset > offset else { continue }
                    offset = h.nextOffset
                    moved = true
                    guard h.isTransactional, h.producerId >= 0 else { continue }
                    if !h.isControl {
                        if open[h.producerId] == nil { open[h.producerId] = h.baseOffset }
                        continue
                    }
                    guard let first = open.removeValue(forKey: h.producerId) else { continue }
                    if try ControlRecord.isAbort(batch.bytes) {
                        expected[h.baseOffset] = AbortedTransaction(producerId: h.producerId, firstOffset: first, lastOffset: h.baseOffset, lastStableOffset: 0)
                    }
                }
                if !moved { break }
            }
        } catch {
            problems.append("\(tp): reading markers failed: \(error)")
            return
        }
        var actual: [Int64: AbortedTransaction] = [:]
        for (_, entries) in log.abortedTransactionIndex() {
            for e in entries {
                if actual[e.lastOffset] != nil { problems.append("\(tp): two .txnindex entries for the marker at \(e.lastOffset)") }
                actual[e.lastOffset] = e
            }
        }
        abortsChecked += expected.count
        for (at, e) in expected {
            guard let a = actual[at] else {
                problems.append("\(tp): ABORT marker at \(at) (transaction from \(e.firstOffset)) has no .txnindex entry; trace: \(trace.suffix(8))")
                continue
            }
            if a.producerId != e.producerId || (a.firstOffset != e.firstOffset && a.firstOffset >= start) {
                problems.append("\(tp): .txnindex entry \(a) for the marker at \(at), expected first offset \(e.firstOffset)")
            }
        }
        for (at, a) in actual where expected[at] == nil && a.firstOffset >= start {
            problems.append("\(tp): .txnindex entry \(a) names no ABORT marker of the log; trace: \(trace.suffix(8))")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SpoolTestSupport
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// A flush timer fired by hand: it keeps each scheduled round and its delay.
final class ManualFlushTimer: Sendable {
    private let pending = Mutex<[(millis: Int64, work: @Sendable () -> Void)]>([])

    var schedule: OffsetStore.FlushTimer { { millis, work in self.pending.withLock { $0.append((millis, work)) } } }
    /// Delays of the rounds scheduled and not yet fired.
    var delays: [Int64] { pending.withLock { $0.map(\.millis) } }

    /// Runs every scheduled round, on this thread.
    func fire() {
        let due = pending.withLock { p in
            defer { p.removeAll() }
            return p
        }
        for d in due { d.work() }
    }
}

/// `offsets.flush.ms`: under `.interval` a commit is answered once written, before any
/// fsync, and one deferred fsync round covers every commit written before it; under
/// `.everyCommit` each commit waits for an fsync. Power loss and process death (kill -9:
/// the page cache survives) are checked on the simulated disk.
@Suite struct OffsetFlushPolicyTests {
    func offset(_ value: Int64) -> CommittedOffset { CommittedOffset(offset: value, commitTimestamp: value) }

    /// A consumer waiting for each commit before the next, as kafka-python's commit() per
    /// record does: under `.interval` its 1,000 commits are answered on the caller's thread
    /// without one fsync, are visible at once, and one scheduled round makes them all durable.
    @Test func intervalCommitsAreAnsweredWithoutAnFsync() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let timer = ManualFlushTimer()
        let store = try OffsetStore(dataDirectory: tmp.path, io: io, flushPolicy: .interval(millis: 1000), flushTimer: timer.schedule)
        let before = io.fsyncCount
        let tp = TopicPartition("t", 0)
        for i in 0..<1000 {
            let answered = Mutex<Result<Void, StorageError>?>(nil)
            store.commit(group: "g", [tp: offset(Int64(i))]) { result in answered.withLock { $0 = result } }
            // Answered before commit() returned: nothing waited for a disk flush or another thread.
            guard case .success = answered.withLock({ $0 }) else {
                Issue.record("commit \(i) not answered at once: \(String(describing: answered.withLock { $0 }))")
                return
            }
            #expect(store.committed(group: "g")[tp]?.offset == Int64(i))
        }
        #expect(io.fsyncCount == before, "no fsync before the scheduled round")
        #expect(timer.delays == [1000], "one deferred round for all 1,000 commits, offsets.flush.ms away")
        timer.fire()
        #expect(io.fsyncCount == before + 1, "one fsync covers every commit written before it")
        #expect(timer.delays.isEmpty)
        // The next commit schedules the next round.
        try store.commit(group: "g", [tp: offset(1000)])
        #expect(timer.delays == [1000])
        #expect(io.fsyncCount == before + 1)
        // A clean close fsyncs what the policy had deferred.
        store.close()
        #expect(io.fsyncCount == before + 2)
        #expect(try OffsetStore(dataDirectory: tmp.path).committed(group: "g")[tp]?.offset == 1000)
    }

    /// The contrast that bounds kafka-python to ~1 / fsync latency: under `.everyCommit` a
    /// committer that waits for each answer pays one fsync per commit.
    @Test func everyCommitPaysOneFsyncPerSerialCommit() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let timer = ManualFlushTimer()
        let store = try OffsetStore(dataDirectory: tmp.path, io: io, flushPolicy: .everyCommit, flushTimer: timer.schedule)
        let before = io.fsyncCount
        for i in 0..<50 {
            let done = DispatchSemaphore(value: 0)
            store.commit(group: "g", [TopicPartition("t", 0): offset(Int64(i))]) { _ in done.signal() }
            #expect(done.wait(timeout: .now() + 30) == .success)
        }
        #expect(io.fsyncCount - before == 50)
        #expect(timer.delays.isEmpty, "nothing deferred")
        store.close()
    }

    /// Under `.interval`, a power loss keeps every commit answered before the last fsync
    /// round, and what it keeps is a prefix of the commits (the log is cut at the first
    /// torn record); the death of the process alone (kill -9: the page cache survives)
    /// keeps every answered commit. Seeds 0..<200 (SPOOL_TEST_SEED replays one).
    @Test func aPowerLossLosesOnlyCommitsAfterTheLastRound() throws {
        let seeds = ProcessInfo.processInfo.environment["SPOOL_TEST_SEED"].flatMap(UInt64.init).map { $0...$0 } ?? 0...199
        for seed in seeds {
            var random = SeededRandom(seed: seed)
            let disk = SimulatedDisk()
            try disk.makeDirectory("/data")
            let timer = ManualFlushTimer()
            let store = try OffsetStore(dataDirectory: "/data", io: disk, compactionMinBytes: 2048,
                                        flushPolicy: .interval(millis: 1000), flushTimer: timer.schedule)
            let a = TopicPartition("t", 0), b = TopicPartition("t", 1)
            var answered: Int64 = -1
            var flushed: Int64 = -1
            for i in Int64(0)..<Int64.random(in: 1...300, using: &random) {
                // Two partitions in one commit: a commit is all or nothing.
                try store.commit(group: "g", [a: offset(i), b: offset(i * 2)])
                answered = i
                if Int.random(in: 0..<20, using: &random) == 0 {
                    timer.fire()
                    flushed = answered
                }
            }
            // Process death: a new store over the same disk (page cache included) sees all.
            let survivor = try OffsetStore(dataDirectory: "/data", io: disk, compactionMinBytes: 2048)
            #expect(survivor.committed(group: "g")[a]?.offset == answered, "seed \(seed): kill -9 lost an answered commit")
            // Power loss: at least what the last round covered, at most what was answered.
            let after = disk.powerLoss(&random)
            let reopened = try OffsetStore(dataDirectory: "/data", io: after, compactionMinBytes: 2048)
            let found = reopened.committed(group: "g")
            let kept = found[a]?.offset ?? -1
            #expect(kept >= flushed && kept <= answered, "seed \(seed): kept \(kept), flushed \(flushed), answered \(answered)")
            #expect((found[b]?.offset ?? -2) == (kept < 0 ? -2 : kept * 2), "seed \(seed): a commit came back half")
            _ = store
        }
    }

    /// `offsets.flush.ms`: 0 fsyncs before each answer; storage alone defaults to that (the
    /// broker's default, 1 s, is checked in CommitDurabilityTests).
    @Test func theSettingMapsToAPolicy() {
        #expect(OffsetFlushPolicy(flushMillis: 0) == .everyCommit)
        #expect(OffsetFlushPolicy(flushMillis: 250) == .interval(millis: 250))
        #expect(StorageConfig(dataDirectory: "/x").offsetsFlush == .everyCommit)
    }
}

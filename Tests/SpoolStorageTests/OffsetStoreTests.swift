#if canImport(Glibc)
import Glibc
import SpoolTestSupport
#endif
import Foundation
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

@Suite struct OffsetStoreTests {
    func offset(_ value: Int64, _ meta: String = "") -> CommittedOffset {
        CommittedOffset(offset: value, metadata: meta, commitTimestamp: value * 10)
    }

    /// Every commit that returned survives a power loss at any later moment, whatever part
    /// of the unsynced tail reached the disk; the one in flight is all or nothing.
    /// (The old test re-read the file through the page cache, which proves nothing.)
    @Test func everyReturnedCommitSurvivesAPowerLoss() throws {
        let seeds = 0..<UInt64(300)
        for seed in seeds {
            var random = SeededRandom(seed: seed)
            let disk = SimulatedDisk()
            try disk.makeDirectory("/data")
            let store = try OffsetStore(dataDirectory: "/data", io: disk, compactionMinBytes: 2048)
            var durable: [String: [TopicPartition: CommittedOffset]] = [:]
            // The call cut by the crash: its group, and the group's offsets had it made it.
            var inFlight: (group: String, ifDone: [TopicPartition: CommittedOffset])?
            disk.crash(atOperation: Int.random(in: 1...400, using: &random))
            for i in 0..<200 {
                let group = "g\(Int.random(in: 0..<4, using: &random))"
                var offsets: [TopicPartition: CommittedOffset] = [:]
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    offsets[TopicPartition("t\(Int.random(in: 0..<3, using: &random))", Int32.random(in: 0..<4, using: &random))] =
                        offset(Int64(i), i % 7 == 0 ? "meta \(i)" : "")
                }
                let remove = i % 50 == 49
                let ifDone = remove ? [:] : (durable[group] ?? [:]).merging(offsets) { _, new in new }
                inFlight = (group, ifDone)
                do {
                    if remove { try store.removeGroup(group) } else { try store.commit(group: group, offsets) }
                    durable[group] = ifDone.isEmpty ? nil : ifDone
                    inFlight = nil
                } catch {
                    #expect(disk.crashed, "seed \(seed): \(error)")
                    break
                }
            }
            let after = disk.powerLoss(&random)
            let reopened = try OffsetStore(dataDirectory: "/data", io: after, compactionMinBytes: 2048)
            for group in Set(durable.keys).union(reopened.groups).union(inFlight.map { [$0.group] } ?? []) {
                let found = reopened.committed(group: group)
                let expected = durable[group] ?? [:]
                if let inFlight, inFlight.group == group {
                    #expect(found == expected || found == inFlight.ifDone, "seed \(seed), group \(group) (in flight)")
                } else {
                    #expect(found == expected, "seed \(seed), group \(group)")
                }
            }
        }
    }

    /// Waits (bounded, for an event, not a duration) until `condition` holds.
    func waitFor(seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    // Group commit, checked without depending on scheduling: the first commit's fsync is
    // held at the test's gate until every other commit has been written; the held fsync
    // covers the first commit alone (the only one written when its round began), and one
    // more covers all the others. Commits that each waited for an fsync of their own would
    // cost one per commit.

    /// Threads committing at once (the blocking API) share fsyncs: 32 commits, 2 fsyncs, in each of 3 rounds.
    @Test func concurrentCommitsShareFsyncs() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let store = try OffsetStore(dataDirectory: tmp.path, io: io)
        let committers = 32
        let rounds = 3
        for r in 0..<rounds {
            let fsyncsBefore = io.fsyncCount, writesBefore = io.writeCount
            io.closeFsyncGate()
            let done = DispatchGroup()
            func commitOnAThread(_ c: Int) {
                done.enter()
                Thread.detachNewThread {
                    try! store.commit(group: "g\(c)", [TopicPartition("t", Int32(c)): CommittedOffset(offset: Int64(r), commitTimestamp: 0)])
                    done.leave()
                }
            }
            commitOnAThread(0)
            #expect(await waitFor { io.fsyncsWaiting == 1 }, "round \(r): the first commit's fsync reached the gate")
            for c in 1..<committers { commitOnAThread(c) }
            #expect(await waitFor { io.writeCount - writesBefore == committers }, "round \(r): every commit was written")
            io.openFsyncGate()
            #expect(done.wait(timeout: .now() + 60) == .success)
            let fsyncs = io.fsyncCount - fsyncsBefore
            #expect(fsyncs == 2, "round \(r): \(fsyncs) fsyncs for \(committers) commits")
        }
        let reopened = try OffsetStore(dataDirectory: tmp.path)
        for c in 0..<committers {
            #expect(reopened.committed(group: "g\(c)")[TopicPartition("t", Int32(c))]?.offset == Int64(rounds - 1))
        }
    }

    /// Async commits wait without a thread each: a thousand commits in flight at once
    /// share two fsyncs, and every one is durable when it returns.
    @Test func asyncCommitsWaitTogetherForFewFsyncs() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let store = try OffsetStore(dataDirectory: tmp.path, io: io)
        let fsyncsBefore = io.fsyncCount, writesBefore = io.writeCount
        let commits = 1000
        io.closeFsyncGate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            func commit(_ c: Int) {
                group.addTask {
                    try await store.commit(group: "g\(c % 10)", offsets: [TopicPartition("t", Int32(c / 10)): CommittedOffset(offset: Int64(c), commitTimestamp: 0)])
                }
            }
            commit(0)
            #expect(await waitFor { io.fsyncsWaiting == 1 }, "the first commit's fsync reached the gate")
            for c in 1..<commits { commit(c) }
            #expect(await waitFor { io.writeCount - writesBefore == commits }, "every commit was written")
            io.openFsyncGate()
            try await group.waitForAll()
        }
        let fsyncs = io.fsyncCount - fsyncsBefore
        #expect(fsyncs == 2, "fsyncs: \(fsyncs) for \(commits) commits")
        store.close()
        let reopened = try OffsetStore(dataDirectory: tmp.path)
        for c in 0..<commits {
            #expect(reopened.committed(group: "g\(c % 10)")[TopicPartition("t", Int32(c / 10))]?.offset == Int64(c))
        }
    }

    /// Commits handed over from one serial queue (as a group coordinator does) with a
    /// completion do not wait for each other's fsyncs: a thousand of them share two.
    @Test func completionCommitsFromASerialQueueShareFsyncs() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let io = FaultyFileIO()
        let store = try OffsetStore(dataDirectory: tmp.path, io: io)
        let fsyncsBefore = io.fsyncCount, writesBefore = io.writeCount
        let commits = 1000
        let queue = DispatchQueue(label: "serial committer")
        let done = DispatchGroup()
        let failures = Mutex(0)
        func commit(_ c: Int) {
            done.enter()
            queue.async {
                store.commit(group: "g", [TopicPartition("t", Int32(c % 7)): CommittedOffset(offset: Int64(c), commitTimestamp: 0)]) { result in
                    if case .failure = result { failures.withLock { $0 += 1 } }
                    done.leave()
                }
            }
        }
        io.closeFsyncGate()
        commit(0)
        #expect(await waitFor { io.fsyncsWaiting == 1 }, "the first commit's fsync reached the gate")
        for c in 1..<commits { commit(c) }
        #expect(await waitFor { io.writeCount - writesBefore == commits }, "every commit was written")
        io.openFsyncGate()
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(failures.withLock { $0 } == 0)
        let fsyncs = io.fsyncCount - fsyncsBefore
        #expect(fsyncs == 2, "fsyncs: \(fsyncs) for \(commits) commits")
        // An invalid commit fails through the completion, at once.
        let refused = Mutex<StorageError?>(nil)
        store.commit(group: "", [:]) { result in if case .failure(let e) = result { refused.withLock { $0 = e } } }
        #expect(refused.withLock { $0 }?.code == .invalidConfig)
        store.close()
        let reopened = try OffsetStore(dataDirectory: tmp.path)
        for p in 0..<7 {
            let last = (0..<commits).last { $0 % 7 == p }!
            #expect(reopened.committed(group: "g")[TopicPartition("t", Int32(p))]?.offset == Int64(last))
        }
    }

    /// The log is compacted as it grows, and the compacted log holds the latest values.
    @Test func theLogIsCompactedAndKeepsTheLatestValues() throws {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/data")
        let store = try OffsetStore(dataDirectory: "/data", io: disk, compactionMinBytes: 4096)
        for i in 0..<3000 {
            try store.commit(group: "g\(i % 3)", [TopicPartition("t", Int32(i % 5)): offset(Int64(i))])
            #expect(disk.contents("/data/" + OffsetStore.fileName)!.count < 3 * 4096, "not compacted at commit \(i)")
        }
        try store.removeTopic("t-none")
        let reopened = try OffsetStore(dataDirectory: "/data", io: disk, compactionMinBytes: 4096)
        #expect(reopened.groups == ["g0", "g1", "g2"])
        for g in 0..<3 {
            for p in 0..<5 {
                let latest = (0..<3000).last { $0 % 3 == g && $0 % 5 == p }!
                #expect(reopened.committed(group: "g\(g)")[TopicPartition("t", Int32(p))] == offset(Int64(latest)))
            }
        }
        try reopened.removeTopic("t")
        #expect(try OffsetStore(dataDirectory: "/data", io: disk).groups.isEmpty)
    }

    /// A torn or damaged tail is cut at open; the commits before it stay, and new ones follow.
    @Test func aDamagedTailIsCutAtOpen() throws {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/data")
        let store = try OffsetStore(dataDirectory: "/data", io: disk)
        try store.commit(group: "g", [TopicPartition("a", 0): offset(1)])
        try store.commit(group: "g", [TopicPartition("a", 1): offset(2)])
        store.close()
        let path = "/data/" + OffsetStore.fileName
        let whole = disk.contents(path)!
        for cut in [whole.count - 1, whole.count - 10] {
            disk.setContents(path, Array(whole.prefix(cut)) + [0xFF, 0x00])
            let reopened = try OffsetStore(dataDirectory: "/data", io: disk)
            #expect(reopened.committed(group: "g") == [TopicPartition("a", 0): offset(1)])
            try reopened.commit(group: "g", [TopicPartition("a", 2): offset(3)])
            reopened.close()
            #expect(try OffsetStore(dataDirectory: "/data", io: disk).committed(group: "g")[TopicPartition("a", 2)] == offset(3))
        }
    }

    /// A full disk fails the commit that could not be written, not the store.
    @Test func aFullDiskFailsOneCommitOnly() throws {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/data")
        let store = try OffsetStore(dataDirectory: "/data", io: disk)
        try store.commit(group: "g", [TopicPartition("a", 0): offset(1)])
        disk.fill(leaving: 5)
        #expect { try store.commit(group: "g", [TopicPartition("a", 0): offset(2)]) } throws: { ($0 as? StorageError)?.errno == ENOSPC }
        #expect(store.committed(group: "g")[TopicPartition("a", 0)] == offset(1))
        disk.setCapacity(nil)
        try store.commit(group: "g", [TopicPartition("a", 0): offset(3)])
        store.close()
        #expect(try OffsetStore(dataDirectory: "/data", io: disk).committed(group: "g")[TopicPartition("a", 0)] == offset(3))
    }

    /// The whole-table file of earlier versions is converted into the log once.
    @Test func theLegacyTableIsConverted() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let legacy = "spool-offsets v1\ng%09tab\ta\t0\t10\t5\tm%25\ng2\tb\t3\t7\t6\t\n"
        try Data(legacy.utf8).write(to: URL(fileURLWithPath: tmp.path + "/" + OffsetStore.legacyFileName))
        let store = try OffsetStore(dataDirectory: tmp.path)
        #expect(store.groups == ["g\ttab", "g2"])
        #expect(store.committed(group: "g\ttab")[TopicPartition("a", 0)] == CommittedOffset(offset: 10, metadata: "m%", commitTimestamp: 5))
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/" + OffsetStore.legacyFileName))
        store.close()
        #expect(try OffsetStore(dataDirectory: tmp.path).committed(group: "g2")[TopicPartition("b", 3)]?.offset == 7)
    }
}

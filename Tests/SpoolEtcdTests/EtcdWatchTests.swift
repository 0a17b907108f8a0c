import Foundation
import SpoolEtcd
import SpoolTestSupport
import Testing

// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct EtcdWatchTests {
    /// Collects `count` events from `watch` within `seconds`.
    func collect(_ watch: EtcdWatch, count: Int, within seconds: Double = 10) async throws -> [EtcdWatchEvent] {
        try await withThrowingTaskGroup(of: [EtcdWatchEvent].self) { group in
            group.addTask {
                var events: [EtcdWatchEvent] = []
                for try await response in watch {
                    events += response.events
                    if events.count >= count { break }
                }
                return events
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                watch.cancel()
                return []
            }
            let events = try await group.next() ?? []
            group.cancelAll()
            watch.cancel()
            return events
        }
    }

    @Test func seesPutsAndDeletesAndReplaysFromARevision() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let first = try await client.put("/w/a", [UInt8](text: "1"))
            _ = try await client.put("/w/b", [UInt8](text: "2"))
            try await client.delete(.key("/w/a"))
            _ = try await client.put("/elsewhere", [UInt8](text: "x"))

            // Replay: everything under the prefix since `first`, in order.
            let replay = try await client.watch(.prefix("/w/"), fromRevision: first.revision)
            let replayed = try await collect(replay, count: 3)
            #expect(replayed.map(\.kind) == [.put, .put, .delete])
            #expect(replayed.map(\.kv.key) == ["/w/a", "/w/b", "/w/a"])
            #expect(replayed.map(\.kv.valueString) == ["1", "2", ""])
            #expect(replayed[0].kv.modRevision == first.revision)

            // Live: a watch from now sees what comes after it, with previous values when asked.
            let live = try await client.watch(.prefix("/w/"), previousValues: true)
            let writer = Task {
                _ = try await client.put("/w/b", [UInt8](text: "3"))
                try await client.delete(.key("/w/b"))
            }
            let seen = try await collect(live, count: 2)
            try await writer.value
            #expect(seen.map(\.kind) == [.put, .delete])
            #expect(seen.first?.previous?.valueString == "2")
            #expect(seen.last?.previous?.valueString == "3")
        }
    }

    @Test func aCompactedStartRevisionEndsTheWatchAndTheResumingWatchResyncs() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let first = try await client.put("/c/a", [UInt8](text: "1"))
            _ = try await client.put("/c/a", [UInt8](text: "2"))
            let last = try await client.put("/c/b", [UInt8](text: "3"))
            try await offPool { try compact(etcd, revision: last.revision) }

            let watch = try await client.watch(.prefix("/c/"), fromRevision: first.revision)
            do {
                for try await _ in watch { Issue.record("an event from a compacted revision") }
                Issue.record("the watch ended without an error")
            } catch let error as EtcdError {
                #expect(error.code == .compacted)
                #expect(error.compactRevision == last.revision)
            }

            // The resuming watch re-reads, then carries on from the snapshot's revision.
            var updates = EtcdResumingWatch(client: client, keys: .prefix("/c/"), fromRevision: first.revision).makeAsyncIterator()
            guard case .resynced(let kvs, let revision)? = try await updates.next() else {
                Issue.record("no resync after compaction"); return
            }
            #expect(kvs.map(\.valueString) == ["2", "3"])
            #expect(revision == last.revision)
            let later = try await client.put("/c/a", [UInt8](text: "4"))
            guard case .events(let events, let at)? = try await updates.next() else { Issue.record("no event after resync"); return }
            #expect(events.map(\.kv.valueString) == ["4"])
            #expect(at == later.revision)
        }
    }

    /// etcdctl compaction (the client library has no compaction call: Spool never compacts).
    @Sendable func compact(_ etcd: EtcdCluster, revision: Int64) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        process.arguments = ["--endpoints", etcd.endpoints, "compaction", String(revision)]
        process.environment = ["ETCDCTL_API": "3"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ProcessError("etcdctl compaction exited \(process.terminationStatus)") }
    }
}

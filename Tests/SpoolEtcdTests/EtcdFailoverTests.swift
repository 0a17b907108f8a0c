import Foundation
import SpoolEtcd
import SpoolTestSupport
import Testing

// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct EtcdFailoverTests {
    @Test func callsMoveToAnotherMemberWhenOneIsKilled() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            _ = try await client.put("/f/before", [UInt8](text: "1"))
            let used = client.currentEndpoint
            let victim = try #require(etcd.members.firstIndex { $0.clientPort == used.port })

            await etcd.kill(victim) // kill -9 of the member the client talks to
            let started = ContinuousClock.now
            let put = try await client.put("/f/after", [UInt8](text: "2"))
            print("first put after kill -9 of the member in use: \(seconds(ContinuousClock.now - started)) s")
            #expect(client.currentEndpoint != used)
            #expect(try await client.get("/f/before")?.valueString == "1")
            let txn = try await client.txn(
                compare: [.modRevision("/f/after", .equal, put.revision)], success: [.put("/f/after", [UInt8](text: "3"))])
            #expect(txn.succeeded)
            let lease = try await client.leaseGrant(ttlSeconds: 5)
            #expect(try await client.leaseKeepAliveOnce(lease.id) > 0)

            // The member comes back: the cluster (and the client) carry on.
            try await etcd.restart(victim)
            try await etcd.waitHealthy([victim])
            let only = try makeClient(etcd, endpoints: etcd.members[victim].clientURL)
            defer { only.shutdown() }
            #expect(try await eventually(within: 10) { (try? await only.get("/f/after"))?.valueString == "3" })
        }
    }

    @Test func aMemberThatAcceptsButNeverAnswersCostsOneAttemptTimeout() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            let client = try makeClient(etcd, requestTimeout: .seconds(8), attemptTimeout: .seconds(1))
            defer { client.shutdown() }
            _ = try await client.put("/p/k", [UInt8](text: "1"))
            let used = client.currentEndpoint
            let victim = try #require(etcd.members.firstIndex { $0.clientPort == used.port })
            etcd.pause(victim)
            defer { etcd.resume(victim) }

            // An idempotent call gives up on it after one attempt timeout and moves on.
            let put = try await client.put("/p/k", [UInt8](text: "2"))
            #expect(client.currentEndpoint != used)
            #expect(try await client.get("/p/k")?.modRevision == put.revision)

            // A transaction sent to it is not repeated elsewhere: it fails with .timeout, and
            // the next call starts at another member.
            let only = try makeClient(
                etcd, endpoints: [etcd.members[victim].clientURL, etcd.members[(victim + 1) % 3].clientURL].joined(separator: ","),
                requestTimeout: .seconds(4), attemptTimeout: .seconds(1))
            defer { only.shutdown() }
            do {
                _ = try await only.txn(compare: [.modRevision("/p/k", .equal, put.revision)], success: [.put("/p/k", [UInt8](text: "3"))])
                Issue.record("a txn to a frozen member answered")
            } catch let error as EtcdError {
                #expect(error.code == .timeout)
            }
            #expect(only.currentEndpoint != used)
            let retried = try await only.txn(
                compare: [.modRevision("/p/k", .equal, put.revision)], success: [.put("/p/k", [UInt8](text: "3"))], failure: [.range(.key("/p/k"))])
            #expect(retried.succeeded)
        }
    }

    @Test func aResumingWatchCarriesOnOnAnotherMemberWithoutMissingAChange() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            // The watcher prefers member 0; the writer talks to the others only.
            let watcher = try makeClient(etcd)
            let writer = try makeClient(etcd, endpoints: etcd.members[1].clientURL + "," + etcd.members[2].clientURL)
            defer { watcher.shutdown(); writer.shutdown() }
            let start = try await writer.put("/rw/k", [UInt8](text: "0"))
            var updates = EtcdResumingWatch(client: watcher, keys: .prefix("/rw/"), fromRevision: start.revision).makeAsyncIterator()
            var values: [String] = []
            func take(_ count: Int) async throws {
                while values.count < count {
                    guard let update = try await updates.next() else { return }
                    if case .events(let events, _) = update { values += events.map(\.kv.valueString) }
                }
            }
            try await take(1)
            #expect(values == ["0"])
            await etcd.kill(0)
            for i in 1...5 { _ = try await writer.put("/rw/k", [UInt8](text: String(i))) }
            try await take(6)
            #expect(values == ["0", "1", "2", "3", "4", "5"])
        }
    }

    /// A member that stops answering (SIGSTOP: its sockets stay open, as a member cut off by the
    /// network or left in a minority keeps them) leaves a watch on it silent; the watch's probe
    /// notices and the resuming watch carries on at another member without missing a change.
    @Test func aWatchOnAMemberThatFallsSilentMovesToAnotherMember() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            var configuration = try EtcdClientConfiguration(endpoints: etcd.members.map(\.clientURL).joined(separator: ","))
            configuration.attemptTimeout = .seconds(1)
            configuration.watchProbeInterval = .milliseconds(500)
            let watcher = try EtcdClient(configuration: configuration)
            let writer = try makeClient(etcd, endpoints: etcd.members[1].clientURL + "," + etcd.members[2].clientURL)
            defer { watcher.shutdown(); writer.shutdown() }
            let start = try await writer.put("/silent/k", [UInt8](text: "0"))
            #expect(watcher.currentEndpoint.port == etcd.members[0].clientPort)
            let received = Received()
            let reader = Task {
                for try await update in EtcdResumingWatch(client: watcher, keys: .prefix("/silent/"), fromRevision: start.revision) {
                    if case .events(let events, _) = update { received.append(events.map(\.kv.valueString)) }
                }
            }
            defer { reader.cancel() }
            #expect(try await eventually(within: 10) { received.values == ["0"] })
            etcd.pause(0)
            defer { etcd.resume(0) }
            for i in 1...3 { _ = try await writer.put("/silent/k", [UInt8](text: String(i))) }
            let started = ContinuousClock.now
            // Without the probe the watch would wait on the stopped member for ever.
            #expect(try await eventually(within: 15) { received.values == ["0", "1", "2", "3"] })
            print("the watch carried on at another member \(seconds(ContinuousClock.now - started)) s after the writes")
            #expect(watcher.currentEndpoint.port != etcd.members[0].clientPort)
        }
    }
}

/// Values a watch delivered, appended from its reading task.
private final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var values: [String] { lock.withLock { stored } }
    func append(_ more: [String]) { lock.withLock { stored += more } }
}

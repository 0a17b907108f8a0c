import Foundation
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Consumer groups in a 3-broker cluster over the native protocol: the CLI finds a group's
/// coordinator (FindCoordinator, method 27) from any broker, consumes and commits through a
/// broker that does not coordinate the group, every broker describes the same committed
/// offsets, `spool group list` merges every coordinator's groups, and after a kill -9 of the
/// coordinator the group resumes after its committed offsets at the new one, and a member
/// that stays through the failover rejoins at the new coordinator and reads on.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterGroupCoordinatorTests {
    static let ttl = 3
    static let clusterId = "cgc"

    func startBroker(_ id: Int32, _ etcd: EtcdCluster) async throws -> BrokerProcess {
        let endpoints = etcd.endpoints
        let directory = NSTemporaryDirectory() + "spool-cgc-" + UUID().uuidString
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", Self.clusterId, "--cluster-lease-ttl-seconds", String(Self.ttl),
                "--offsets-topic-num-partitions", "3"], directory: directory)
        }
    }

    func spool(_ broker: BrokerProcess, _ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await offPool { try broker.spool(arguments, stdin: stdin) }
    }

    /// Runs `arguments` on `broker` until `accept` holds (at most `seconds`); the last result.
    func retrying(_ broker: BrokerProcess, _ arguments: [String], seconds: Double, _ accept: (CommandResult) -> Bool) async throws -> CommandResult {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let r = try await spool(broker, arguments)
            if accept(r) || Date() >= deadline { return r }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// `spool group coordinator` parsed: the node id, or nil when it failed.
    func coordinator(_ r: CommandResult) -> Int32? {
        guard r.status == 0, let first = r.stdout.split(separator: " ").first else { return nil }
        return Int32(first)
    }

    /// `spool group describe` rows: partition → committed offset (and whether every lag is 0).
    func committed(_ r: CommandResult) -> (offsets: [Int32: Int64], caughtUp: Bool)? {
        guard r.status == 0 else { return nil }
        var out: [Int32: Int64] = [:]
        var caughtUp = true
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t")
            guard f.count == 5, f[0] == "events", let p = Int32(f[1]), let c = Int64(f[2]) else { continue }
            out[p] = c
            if f[4] != "0" { caughtUp = false }
        }
        return out.isEmpty ? nil : (out, caughtUp)
    }

    @Test func groupCoordinatedElsewhereConsumesCommitsAndSurvivesCoordinatorKill() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            for id in Int32(1)...3 { brokers[id] = try await startBroker(id, etcd) }
            defer { for b in brokers.values { _ = b.terminate() } }
            let b1 = brokers[1]!

            // A topic of RF 3, fully in sync, with 10 records (acks=all).
            var r = try await retrying(b1, ["topic", "create", "events", "--partitions", "2", "--replication-factor", "3"], seconds: 20) {
                $0.status == 0
            }
            #expect(r.status == 0, "create: \(r.stdout) \(r.stderr)")
            r = try await retrying(b1, ["topic", "describe", "events"], seconds: 15) { r in
                let rows = r.stdout.split(separator: "\n").map { $0.split(separator: "\t") }.filter { $0.count == 9 && Int($0[0]) != nil }
                return rows.count == 2 && rows.allSatisfy { Set($0[8].split(separator: ",")) == ["1", "2", "3"] }
            }
            let first = (0..<10).map { "first-\($0)" }
            r = try await spool(b1, ["produce", "events", "--acks", "all"], stdin: first.joined(separator: "\n") + "\n")
            #expect(r.status == 0, "produce: \(r.stderr)")

            // A group coordinated by another broker than the bootstrap one (broker 1). The first
            // lookups create __consumer_offsets (COORDINATOR_NOT_AVAILABLE meanwhile).
            var group: String?
            var owner: Int32 = -1
            let lookupDeadline = Date().addingTimeInterval(30)
            search: while Date() < lookupDeadline {
                for i in 0..<12 {
                    let name = "g\(i)"
                    if let node = coordinator(try await spool(b1, ["group", "coordinator", name])), node != 1 {
                        (group, owner) = (name, node)
                        break search
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
            }
            let g = try #require(group, "no group among g0...g11 is coordinated by broker 2 or 3")
            print("group \(g) is coordinated by broker \(owner)")
            for (id, b) in brokers {
                let seen = coordinator(try await retrying(b, ["group", "coordinator", g], seconds: 10) { self.coordinator($0) == owner })
                #expect(seen == owner, "broker \(id) names \(seen.map(String.init) ?? "none") as \(g)'s coordinator, not \(owner)")
            }

            // Consume through broker 1 (not the coordinator): everything, committed.
            r = try await spool(b1, ["consume", "events", "--group", g, "--offset-reset", "earliest", "--exit-at-end"])
            #expect(r.status == 0, "consume through broker 1: \(r.stderr)")
            #expect(Set(r.stdout.split(separator: "\n").map(String.init)) == Set(first), "consumed: \(r.stdout) \(r.stderr)")

            // Every broker describes the same committed offsets (10 in all, no lag).
            var described: [Int32: [Int32: Int64]] = [:]
            for (id, b) in brokers.sorted(by: { $0.key < $1.key }) {
                let d = try await spool(b, ["group", "describe", g])
                let parsed = committed(d)
                #expect(parsed != nil, "describe through broker \(id): \(d.stdout) \(d.stderr)")
                #expect(parsed?.caughtUp == true, "lag through broker \(id): \(d.stdout)")
                described[id] = parsed?.offsets
            }
            #expect(described[1].map { $0.values.reduce(0, +) } == 10, "committed: \(described)")
            #expect(Set(described.values).count == 1, "brokers describe different offsets: \(described)")

            // `group list` through broker 1 shows g although broker \(owner) coordinates it.
            r = try await spool(b1, ["group", "list"])
            #expect(r.status == 0 && r.stdout.split(separator: "\n").contains(Substring(g)), "group list: \(r.stdout) \(r.stderr)")

            // A member that stays through the failover: group h, coordinated by the same broker,
            // consuming through a broker that survives; it has read and committed the 10 records.
            let survivors = brokers.filter { $0.key != owner }
            let via = survivors.sorted { $0.key < $1.key }.first!.value
            var stayer: String?
            for i in 0..<20 where stayer == nil {
                if coordinator(try await spool(b1, ["group", "coordinator", "h\(i)"])) == owner { stayer = "h\(i)" }
            }
            let h = try #require(stayer, "no group among h0...h19 is coordinated by broker \(owner)")
            let member = try SpoolProcess(["consume", "events", "--group", h, "--offset-reset", "earliest", "--broker", via.address])
            defer { member.stop() }
            let readFirst = await offPool { member.wait(seconds: 30) { Set($0.lines) == Set(first) } }
            #expect(readFirst, "the member of \(h) read: \(member.stdout) \(member.stderr)")
            r = try await retrying(via, ["group", "describe", h], seconds: 15) { self.committed($0)?.offsets.values.reduce(0, +) == 10 }
            #expect(committed(r)?.offsets.values.reduce(0, +) == 10, "the member of \(h) did not commit: \(r.stdout) \(r.stderr)")

            // DescribeGroups through broker 1, which does not coordinate h: its one member, Stable.
            r = try await retrying(b1, ["group", "members", h], seconds: 10) { $0.stdout.hasPrefix("state Stable") }
            #expect(r.status == 0 && r.stdout.hasPrefix("state Stable") && r.stdout.split(separator: "\n").count == 2,
                    "members of \(h) through broker 1: \(r.stdout) \(r.stderr)")

            // kill -9 of the coordinator; wait for a new leader of g's offsets partition.
            kill(brokers[owner]!.pid, SIGKILL)
            let killedAt = Date()
            r = try await retrying(via, ["group", "coordinator", g], seconds: Double(Self.ttl) + 20) { r in
                self.coordinator(r).map { $0 != owner } ?? false
            }
            let successor = try #require(coordinator(r), "no new coordinator of \(g) after the kill of \(owner): \(r.stdout) \(r.stderr)")
            #expect(successor != owner)
            print("coordinator of \(g) moved from \(owner) to \(successor) in \(Date().timeIntervalSince(killedAt)) s")

            // Through a survivor: resumes after the committed offsets (nothing new: 0 records).
            r = try await spool(via, ["consume", "events", "--group", g, "--offset-reset", "earliest", "--exit-at-end"])
            #expect(r.status == 0, "consume after failover: \(r.stderr)")
            #expect(r.stdout.isEmpty, "records read again after the failover: \(r.stdout)")

            // 5 more: exactly those.
            let second = (0..<5).map { "second-\($0)" }
            r = try await spool(via, ["produce", "events", "--acks", "all"], stdin: second.joined(separator: "\n") + "\n")
            #expect(r.status == 0, "produce after failover: \(r.stderr)")
            r = try await spool(via, ["consume", "events", "--group", g, "--offset-reset", "earliest", "--exit-at-end"])
            #expect(r.status == 0, "consume of the new records: \(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 5 && Set(lines) == Set(second), "after producing 5 more: \(r.stdout)")

            // The member of h rejoined at the new coordinator (membership is not replicated) and
            // read exactly the new records after its committed offsets.
            let readSecond = await offPool { member.wait(seconds: 40) { Set(second).isSubset(of: Set($0.lines)) } }
            #expect(readSecond, "the member of \(h) after the failover: \(member.stdout) \(member.stderr)")
            #expect(member.lines.count == 15, "the member of \(h) read records twice: \(member.stdout)")
            member.process.terminate() // leaves the group, exits 128 + SIGTERM
            let left = await offPool { member.waitForExit(seconds: 10) }
            #expect(left == 128 + SIGTERM, "the member of \(h) exited with \(left.map(String.init) ?? "nothing (still running)"): \(member.stderr)")

            for (id, b) in survivors {
                let d = try await spool(b, ["group", "describe", g])
                #expect(committed(d).map { $0.offsets.values.reduce(0, +) } == 15, "broker \(id) after failover: \(d.stdout) \(d.stderr)")
            }
            // A reset through a broker that may not coordinate g (outside any generation): all 15 again.
            let other = survivors.sorted { $0.key < $1.key }.last!.value
            r = try await spool(other, ["group", "reset", g, "--topic", "events", "--to", "beginning"])
            #expect(r.status == 0, "reset: \(r.stdout) \(r.stderr)")
            r = try await spool(via, ["consume", "events", "--group", g, "--exit-at-end"])
            #expect(Set(r.stdout.split(separator: "\n").map(String.init)) == Set(first + second), "after the reset: \(r.stdout) \(r.stderr)")

            r = try await spool(via, ["group", "list"])
            // The dead broker is no longer live, so every broker asked answers.
            #expect(r.status == 0 && r.stdout.split(separator: "\n").contains(Substring(g)), "group list after failover: \(r.stdout) \(r.stderr)")
        }
    }
}

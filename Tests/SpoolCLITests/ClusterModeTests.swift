import Foundation
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `spool broker --etcd` against real etcd members and real broker processes: registration,
/// controller election and failover, a frozen broker leaving and coming back, etcd losing quorum.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterModeTests {
    struct Status: Decodable {
        struct Broker: Decodable { var nodeId: Int32; var nativeAddress: String; var kafkaAddress: String; var leaseId: Int64; var epoch: Int64 }
        struct Controller: Decodable { var nodeId: Int32; var epoch: Int64 }
        var brokers: [Broker]
        var controller: Controller?
        struct Partition: Decodable { var topic: String; var partition: Int32; var replicas: [Int32]; var leader: Int32; var leaderEpoch: Int32; var isr: [Int32]; var offline: Bool }
        var partitions: [Partition]
        var underReplicatedPartitions: Int
        var offlinePartitions: Int
    }

    static let ttl = 3

    func startBroker(_ id: Int32, _ etcd: EtcdCluster) async throws -> BrokerProcess {
        let directory = NSTemporaryDirectory() + "spool-cluster-" + UUID().uuidString
        let endpoints = etcd.endpoints
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", "ct", "--cluster-lease-ttl-seconds", String(Self.ttl)], directory: directory)
        }
    }

    func status(_ etcd: EtcdCluster) async throws -> Status? {
        let endpoints = etcd.endpoints
        let r = try await offPool { try runCommand("spool", ["cluster", "status", "--etcd", endpoints, "--cluster-id", "ct", "--json", "--timeout-seconds", "3"]) }
        guard r.status == 0 else { return nil }
        return try JSONDecoder().decode(Status.self, from: Data(r.stdout.utf8))
    }

    /// Polls `status` until `condition` holds (at most `seconds`); returns the last status that held.
    func waitFor(_ etcd: EtcdCluster, seconds: Double, _ condition: (Status) -> Bool) async throws -> Status? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let s = try await status(etcd), condition(s) { return s }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    @Test func threeBrokersRegisterControllerMovesOnKillAndAFrozenBrokerLeavesAndReturns() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            for id in Int32(1)...3 { brokers[id] = try await startBroker(id, etcd) }
            defer { for b in brokers.values { _ = b.terminate() } }
            let all = try #require(try await waitFor(etcd, seconds: 20) { $0.brokers.count == 3 && $0.controller != nil },
                                   "3 brokers and a controller never listed")
            #expect(all.brokers.map(\.nodeId) == [1, 2, 3])
            #expect(all.partitions.isEmpty && all.underReplicatedPartitions == 0 && all.offlinePartitions == 0)
            for b in all.brokers { #expect(b.nativeAddress == brokers[b.nodeId]!.address) }
            let text = try await offPool { [endpoints = etcd.endpoints] in
                try runCommand("spool", ["cluster", "status", "--etcd", endpoints, "--cluster-id", "ct"]) }
            #expect(text.stdout.contains("3 brokers") && text.stdout.contains("0 under-replicated, 0 offline"))

            // kill -9 of the controller: another broker takes over once its lease lapses.
            let old = all.controller!
            let killedAt = Date()
            kill(brokers[old.nodeId]!.pid, SIGKILL)
            let moved = try #require(try await waitFor(etcd, seconds: Double(Self.ttl) * 4 + 5) {
                $0.controller.map { $0.nodeId != old.nodeId } ?? false && $0.brokers.count == 2 },
                "the controller did not move after kill -9 of broker \(old.nodeId)")
            print("controller moved from \(old.nodeId) to \(moved.controller!.nodeId) in \(Date().timeIntervalSince(killedAt)) s (lease TTL \(Self.ttl) s)")
            #expect(moved.controller!.epoch > old.epoch)
            brokers[old.nodeId] = nil

            // SIGSTOP a broker past its TTL: it leaves the list, and registers again after SIGCONT.
            let frozenId = brokers.keys.sorted().first { $0 != moved.controller!.nodeId }!
            let frozen = brokers[frozenId]!
            let before = moved.brokers.first { $0.nodeId == frozenId }!
            kill(frozen.pid, SIGSTOP)
            let gone = try await waitFor(etcd, seconds: Double(Self.ttl) * 4 + 5) { !$0.brokers.contains { $0.nodeId == frozenId } }
            kill(frozen.pid, SIGCONT)
            #expect(gone != nil, "a broker stopped past its TTL stayed listed")
            let back = try await waitFor(etcd, seconds: 20) { $0.brokers.contains { $0.nodeId == frozenId } }
            let again = try #require(back?.brokers.first { $0.nodeId == frozenId }, "the frozen broker did not register again")
            #expect(again.epoch > before.epoch && again.leaseId != before.leaseId)
            #expect(frozen.logText.contains("cluster registration lost"))
        }
    }

    @Test func etcdQuorumLossKeepsServingAndRegistersAgain() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            let broker = try await startBroker(7, etcd)
            defer { _ = broker.terminate() }
            let first = try #require(try await waitFor(etcd, seconds: 20) { $0.brokers.map(\.nodeId) == [7] && $0.controller?.nodeId == 7 })
            var r = try await offPool { try broker.spool(["topic", "create", "t1"]) }
            #expect(r.status == 0, "\(r.stderr)")
            r = try await offPool { try broker.spool(["produce", "t1", "--acks", "all"], stdin: "before\n") }
            #expect(r.status == 0, "\(r.stderr)")

            // Two of three members down: no quorum.
            await etcd.kill(1)
            await etcd.kill(2)
            let deadline = Date().addingTimeInterval(Double(Self.ttl) * 4 + 10)
            while !broker.logText.contains("cluster registration lost") && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            #expect(broker.logText.contains("cluster registration lost"), "no registration loss reported without quorum")
            // The broker keeps serving its own partitions.
            r = try await offPool { try broker.spool(["produce", "t1", "--acks", "all"], stdin: "during\n") }
            #expect(r.status == 0, "\(r.stderr)")
            r = try await offPool { try broker.spool(["consume", "t1", "--from", "beginning", "--exit-at-end"]) }
            #expect(r.stdout == "before\nduring\n", "\(r.stderr)")

            // Quorum back: registered again, controller again.
            try await etcd.restart(1)
            try await etcd.restart(2)
            try await etcd.waitHealthy()
            // (etcd revives the old lease when it has a leader again: wait for the new registration.)
            #expect(try await waitFor(etcd, seconds: 30) {
                $0.brokers.map(\.nodeId) == [7] && $0.brokers[0].epoch > first.brokers[0].epoch && $0.controller?.nodeId == 7 } != nil,
                    "the broker did not register again once etcd had quorum")
        }
    }

    @Test func clusterOptionsAreValidated() async throws {
        for args in [["--etcd", "http://127.0.0.1:1", "--cluster-id", "c"], ["--etcd", "http://127.0.0.1:1", "--node-id", "1"],
                     ["--node-id", "1"], ["--etcd", "nonsense", "--node-id", "1", "--cluster-id", "c"],
                     ["--etcd", "http://127.0.0.1:1", "--node-id", "1", "--cluster-id", "a/b"]] {
            let r = try await offPool { try runCommand("spool", ["broker", "--data-dir", NSTemporaryDirectory() + "spool-never", "--listen", "127.0.0.1:0"] + args, timeoutSeconds: 20) }
            #expect(r.status != 0, "accepted \(args)")
        }
    }
}

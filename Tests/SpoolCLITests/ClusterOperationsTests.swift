import Foundation
import NIOCore
import SpoolKafka
import SpoolRecords
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Operating a cluster of three real `spool broker --etcd` processes and a real etcd: the
/// preferred leader gets leadership back after a kill -9 and restart, automatically and through
/// ElectLeaders (Kafka API 43 and `spool cluster elect-leaders`) with Kafka's per-partition
/// errors; a partition reassigned from [1, 2] to [2, 3] (AlterPartitionReassignments and
/// `spool topic reassign`) is copied to broker 3, deleted on broker 1, and read on throughout.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterOperationsTests {
    static let ttl = 3
    static let clusterId = "ops"

    /// Three brokers; `extra` added to every command line. Returns processes and Kafka ports by node id.
    final class Cluster: @unchecked Sendable {
        var brokers: [Int32: BrokerProcess] = [:]
        var ports: [Int32: Int] = [:]
        /// Killed processes, kept until the end (their deinit deletes the data directory a restart reuses).
        var dead: [BrokerProcess] = []
        let etcd: EtcdCluster
        let extra: [String]
        init(etcd: EtcdCluster, extra: [String]) { self.etcd = etcd; self.extra = extra }

        func start(_ id: Int32, directory: String) async throws {
            let args = ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id), "--etcd", etcd.endpoints,
                        "--cluster-id", ClusterOperationsTests.clusterId, "--cluster-lease-ttl-seconds", String(ClusterOperationsTests.ttl)] + extra
            let b = try await offPool { try BrokerProcess(arguments: args, directory: directory) }
            brokers[id] = b
            ports[id] = try await offPool { try b.kafkaPort() }
        }

        func kill9(_ id: Int32) {
            guard let b = brokers.removeValue(forKey: id) else { return }
            kill(b.pid, SIGKILL)
            b.process.waitUntilExit()
            dead.append(b)
        }

        func stop() { for b in brokers.values { _ = b.terminate() } }
    }

    func withCluster(extra: [String] = [], _ body: (Cluster) async throws -> Void) async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let cluster = Cluster(etcd: etcd, extra: extra)
            defer { cluster.stop() }
            for id in Int32(1)...3 { try await cluster.start(id, directory: NSTemporaryDirectory() + "spool-ops-" + UUID().uuidString) }
            let up = try await waitForMetadata(cluster, on: 1, seconds: 20) { $0.brokers.count == 3 && $0.controllerId >= 1 }
            try #require(up != nil, "3 brokers never registered")
            try await body(cluster)
        }
    }

    // MARK: Kafka calls

    func metadata(port: Int, topics: [String]? = nil) throws -> MetadataResponse {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 5)
        var reader = KafkaReader(try connection.call(.metadata, version: 8, MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: false)))
        return try MetadataResponse(from: &reader, version: 8)
    }

    func partition(_ cluster: Cluster, on id: Int32, _ topic: String, _ p: Int32 = 0) throws -> MetadataResponse.Topic.Partition? {
        try metadata(port: cluster.ports[id]!, topics: [topic]).topics.first?.partitions.first { $0.partitionIndex == p }
    }

    func waitForMetadata(_ cluster: Cluster, on id: Int32, seconds: Double, _ condition: (MetadataResponse) -> Bool) async throws -> MetadataResponse? {
        let deadline = Date().addingTimeInterval(seconds)
        let port = cluster.ports[id]!
        while Date() < deadline {
            if let m = try? await offPool({ try self.metadata(port: port) }), condition(m) { return m }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    func waitForPartition(_ cluster: Cluster, on id: Int32, _ topic: String, seconds: Double,
                          _ condition: (MetadataResponse.Topic.Partition) -> Bool) async throws -> MetadataResponse.Topic.Partition? {
        let m = try await waitForMetadata(cluster, on: id, seconds: seconds) { m in
            m.topics.first { $0.name == topic }?.partitions.first { $0.partitionIndex == 0 }.map(condition) ?? false
        }
        return m?.topics.first { $0.name == topic }?.partitions.first { $0.partitionIndex == 0 }
    }

    func createTopic(port: Int, _ name: String, replicationFactor: Int16) throws -> Int16 {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.createTopics, version: 4, CreateTopicsRequest(topics: [
            .init(name: name, numPartitions: 1, replicationFactor: replicationFactor)], timeoutMs: 10_000)))
        return try CreateTopicsResponse(from: &reader, version: 4).topics[0].errorCode
    }

    func electLeaders(port: Int, _ topic: String, type: Int8 = 0) throws -> ElectLeadersResponse.ReplicaElectionResult.PartitionResult? {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.electLeaders, version: 1, ElectLeadersRequest(
            electionType: type, topicPartitions: [.init(topic: topic, partitions: [0])], timeoutMs: 10_000)))
        return try ElectLeadersResponse(from: &reader, version: 1).replicaElectionResults.first?.partitionResult.first
    }

    func reassign(port: Int, _ topic: String, _ replicas: [Int32]?) throws -> AlterPartitionReassignmentsResponse {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.alterPartitionReassignments, version: 0, AlterPartitionReassignmentsRequest(
            topics: [.init(name: topic, partitions: [.init(partitionIndex: 0, replicas: replicas)])])))
        return try AlterPartitionReassignmentsResponse(from: &reader, version: 0)
    }

    func listReassignments(port: Int) throws -> ListPartitionReassignmentsResponse {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.listPartitionReassignments, version: 0, ListPartitionReassignmentsRequest()))
        return try ListPartitionReassignmentsResponse(from: &reader, version: 0)
    }

    /// acks=all produce of `count` records to partition 0 on `port`; the error code.
    func produce(port: Int, _ topic: String, from first: Int, count: Int) throws -> Int16 {
        var builder = RecordBatchBuilder()
        for i in first..<(first + count) { builder.append(key: nil, value: Array("record-\(i)".utf8), timestamp: 1_700_000_000_000 + Int64(i)) }
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.produce, version: 8, ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [
            .init(name: topic, partitionData: [.init(index: 0, records: .buffer(try builder.build()))])])))
        return try ProduceResponse(from: &reader, version: 8).responses.first?.partitionResponses.first?.errorCode ?? -1
    }

    /// `produce` to whichever broker leads (by `id`'s Metadata), again while the leadership is
    /// still settling (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE), for at most 15 s.
    func produceToLeader(_ cluster: Cluster, asking id: Int32, _ topic: String, from first: Int, count: Int) async throws -> Int16 {
        let deadline = Date().addingTimeInterval(15)
        var code: Int16 = -1
        repeat {
            if let leader = try? await offPool({ try self.partition(cluster, on: id, topic)?.leaderId }), let port = cluster.ports[leader] {
                code = (try? await offPool { try self.produce(port: port, topic, from: first, count: count) }) ?? -1
                if code == 0 { return 0 }
            }
            try await Task.sleep(for: .milliseconds(200))
        } while Date() < deadline
        return code
    }

    /// Fetches from `id` until its high watermark is `hw` (or at least `hw` with `orMore`), at most 15 s; the last answer.
    /// (A produce retried after REQUEST_TIMED_OUT may have been stored twice: tests count from the leader's HW.)
    func fetchUntil(_ cluster: Cluster, on id: Int32, _ topic: String, hw: Int64, orMore: Bool = false) async throws -> (errorCode: Int16, highWatermark: Int64, records: ByteBuffer)? {
        let deadline = Date().addingTimeInterval(15)
        var last: (errorCode: Int16, highWatermark: Int64, records: ByteBuffer)?
        repeat {
            last = try? await offPool { try self.fetch(port: cluster.ports[id]!, topic) }
            if let last, last.errorCode == 0, last.highWatermark == hw || (orMore && last.highWatermark > hw) { return last }
            try await Task.sleep(for: .milliseconds(200))
        } while Date() < deadline
        return last
    }

    /// A consumer's fetch of partition 0 from offset 0 on `port`: error, high watermark, the bytes.
    func fetch(port: Int, _ topic: String) throws -> (errorCode: Int16, highWatermark: Int64, records: ByteBuffer) {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        var reader = KafkaReader(try connection.call(.fetch, version: 11, FetchRequest(maxWaitMs: 100, minBytes: 1, topics: [
            .init(topic: topic, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])))
        let p = try #require(try FetchResponse(from: &reader, version: 11).responses.first?.partitions.first)
        var records = ByteBuffer()
        if case .buffer(let b)? = p.records { records = b }
        return (p.errorCode, p.highWatermark, records)
    }

    /// The value of the first sample of `metric` (any labels) in `id`'s /metrics, nil if absent.
    func metric(_ cluster: Cluster, on id: Int32, _ metric: String) -> Double? {
        guard let admin = cluster.brokers[id]?.adminAddress,
              let text = try? String(contentsOf: URL(string: "http://\(admin)/metrics")!, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(metric + " ") || line.hasPrefix(metric + "{") {
            return line.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }

    func spool(_ cluster: Cluster, _ arguments: [String]) async throws -> CommandResult {
        let args = arguments + ["--etcd", cluster.etcd.endpoints, "--cluster-id", Self.clusterId]
        return try await offPool { try runCommand("spool", args) }
    }

    /// Kills the preferred leader of `topic`, waits for another leader, restarts it, waits until it is back in the ISR.
    func killAndRestartPreferred(_ cluster: Cluster, _ topic: String) async throws -> (preferred: Int32, other: Int32) {
        let before = try #require(try await offPool { try self.partition(cluster, on: 1, topic) })
        let preferred = before.replicaNodes[0]
        #expect(before.leaderId == preferred)
        let directory = cluster.brokers[preferred]!.directory
        cluster.kill9(preferred)
        let other = [Int32(1), 2, 3].first { $0 != preferred }!
        let moved = try await waitForPartition(cluster, on: other, topic, seconds: Double(Self.ttl) + 10) { $0.leaderId >= 0 && $0.leaderId != preferred }
        try #require(moved != nil, "no new leader after kill -9 of \(preferred)")
        try await cluster.start(preferred, directory: directory)
        let back = try await waitForPartition(cluster, on: other, topic, seconds: 20) { $0.isrNodes.contains(preferred) }
        try #require(back != nil, "restarted broker \(preferred) never rejoined the ISR")
        return (preferred, other)
    }

    // MARK: Tests

    @Test func preferredLeaderComesBackAutomatically() async throws {
        try await withCluster(extra: ["--leader-imbalance-check-interval-seconds", "1"]) { cluster in
            #expect(try await offPool { try self.createTopic(port: cluster.ports[1]!, "auto", replicationFactor: 3) } == 0)
            _ = try await waitForPartition(cluster, on: 1, "auto", seconds: 10) { $0.isrNodes.count == 3 }
            #expect(try await produceToLeader(cluster, asking: 1, "auto", from: 0, count: 10) == 0)
            let produced = try await fetchUntil(cluster, on: try #require(try await offPool { try self.partition(cluster, on: 1, "auto")?.leaderId }),
                                                "auto", hw: 10, orMore: true)?.highWatermark ?? -1
            let (preferred, other) = try await killAndRestartPreferred(cluster, "auto")
            let led = try await waitForPartition(cluster, on: other, "auto", seconds: 10) { $0.leaderId == preferred }
            #expect(led != nil, "the preferred replica \(preferred) did not get leadership back on its own")
            // It has every record and serves consumers.
            let read = try await fetchUntil(cluster, on: preferred, "auto", hw: produced)
            if read?.highWatermark != produced {
                let now = try? await offPool { try self.partition(cluster, on: other, "auto") }
                print("auto-0 now: \(String(describing: now)), read \(String(describing: read?.highWatermark)), produced \(produced)")
                for (id, b) in cluster.brokers.sorted(by: { $0.key < $1.key }) {
                    print("--- broker \(id):\n" + b.logText.split(separator: "\n").filter { $0.contains("auto") }.suffix(15).joined(separator: "\n"))
                }
            }
            #expect(produced >= 10 && read?.errorCode == 0 && read?.highWatermark == produced, "\(String(describing: read)), produced \(produced)")
        }
    }

    @Test func electLeadersOnDemandAndReassignment() async throws {
        try await withCluster(extra: ["--leader-imbalance-check-interval-seconds", "0"]) { cluster in
            // --- Preferred election on demand ---
            #expect(try await offPool { try self.createTopic(port: cluster.ports[1]!, "pref", replicationFactor: 3) } == 0)
            _ = try await waitForPartition(cluster, on: 1, "pref", seconds: 10) { $0.isrNodes.count == 3 }
            let notNeeded = try await offPool { try self.electLeaders(port: cluster.ports[2]!, "pref") }
            #expect(notNeeded?.errorCode == 84, "ELECTION_NOT_NEEDED while the preferred leads: \(String(describing: notNeeded))")
            let (preferred, other) = try await killAndRestartPreferred(cluster, "pref")
            try await Task.sleep(for: .seconds(2))
            #expect(try await offPool { try self.partition(cluster, on: other, "pref") }?.leaderId != preferred,
                    "with the automatic election off, leadership stays where it moved")
            // Unclean: a live leader exists, so no election is needed.
            #expect(try await offPool { try self.electLeaders(port: cluster.ports[other]!, "pref", type: 1) }?.errorCode == 84)
            let elected = try await offPool { try self.electLeaders(port: cluster.ports[other]!, "pref") }
            #expect(elected?.errorCode == 0, "ElectLeaders: \(String(describing: elected))")
            let led = try await waitForPartition(cluster, on: other, "pref", seconds: 5) { $0.leaderId == preferred }
            #expect(led != nil, "ElectLeaders did not give leadership back to \(preferred)")
            // The preferred replica down: PREFERRED_LEADER_NOT_AVAILABLE, from Kafka and from the CLI.
            let directory = cluster.brokers[preferred]!.directory
            cluster.kill9(preferred)
            _ = try await waitForPartition(cluster, on: other, "pref", seconds: Double(Self.ttl) + 10) { $0.leaderId >= 0 && $0.leaderId != preferred }
            #expect(try await offPool { try self.electLeaders(port: cluster.ports[other]!, "pref") }?.errorCode == 80)
            // Metrics: the partition is under-replicated; the ElectLeaders answered on `other` counted; etcd calls timed.
            let under = await eventually(seconds: 10) { (self.metric(cluster, on: other, "spool_cluster_under_replicated_partitions") ?? 0) >= 1 }
            #expect(under, "spool_cluster_under_replicated_partitions never counted the partition")
            #expect((metric(cluster, on: other, "spool_cluster_leader_elections_total") ?? 0) >= 1)
            #expect((metric(cluster, on: other, "spool_etcd_request_seconds_count") ?? 0) >= 1)
            #expect(metric(cluster, on: other, "spool_cluster_reassigning_partitions") == 0)
            var r = try await spool(cluster, ["cluster", "elect-leaders", "--topic", "pref", "--partition", "0"])
            #expect(r.status == 1 && r.stdout.contains("pref-0: PREFERRED_LEADER_NOT_AVAILABLE"), "\(r.stdout) \(r.stderr)")
            try await cluster.start(preferred, directory: directory)
            _ = try await waitForPartition(cluster, on: other, "pref", seconds: 20) { $0.isrNodes.contains(preferred) }
            r = try await spool(cluster, ["cluster", "elect-leaders", "--topic", "pref"])
            #expect(r.status == 0 && r.stdout.contains("pref-0: elected"), "\(r.stdout) \(r.stderr)")
            #expect(try await waitForPartition(cluster, on: other, "pref", seconds: 5) { $0.leaderId == preferred } != nil)

            // --- Reassignment [1, 2] -> [2, 3] ---
            #expect(try await offPool { try self.createTopic(port: cluster.ports[1]!, "moves", replicationFactor: 2) } == 0)
            _ = try await waitForPartition(cluster, on: 1, "moves", seconds: 10) { $0.isrNodes.count == 2 }
            let toStart = try await offPool { try self.reassign(port: cluster.ports[3]!, "moves", [1, 2]) }
            #expect(toStart.errorCode == 0 && toStart.responses.first?.partitions.first?.errorCode == 0, "\(toStart)")
            let start = try await waitForPartition(cluster, on: 1, "moves", seconds: 20) { $0.replicaNodes == [1, 2] && Set($0.isrNodes) == [1, 2] }
            if start == nil {
                let now = try? await offPool { try self.partition(cluster, on: 1, "moves") }
                print("moves-0 now: \(String(describing: now))")
                for (id, b) in cluster.brokers.sorted(by: { $0.key < $1.key }) {
                    print("--- broker \(id):\n" + b.logText.split(separator: "\n").filter { $0.contains("moves") }.suffix(15).joined(separator: "\n"))
                }
            }
            try #require(start != nil, "the partition never settled on [1, 2]")
            // Refusals: a broker that is not alive, a duplicate, a cancel with nothing in progress.
            #expect(try await offPool { try self.reassign(port: cluster.ports[2]!, "moves", [2, 9]) }.responses.first?.partitions.first?.errorCode == 39)
            #expect(try await offPool { try self.reassign(port: cluster.ports[2]!, "moves", [2, 2]) }.responses.first?.partitions.first?.errorCode == 39)
            #expect(try await offPool { try self.reassign(port: cluster.ports[2]!, "moves", nil) }.responses.first?.partitions.first?.errorCode == 85)

            let leaderBefore = start!.leaderId
            #expect(try await produceToLeader(cluster, asking: 1, "moves", from: 0, count: 100) == 0)
            let host1 = cluster.brokers[1]!.directory
            #expect(FileManager.default.fileExists(atPath: host1 + "/moves-0") || FileManager.default.fileExists(atPath: host1 + "/moves"),
                    "broker 1 holds a copy before the move: \((try? FileManager.default.contentsOfDirectory(atPath: host1)) ?? [])")
            r = try await spool(cluster, ["topic", "reassign", "--topic", "moves", "--partition", "0", "--replicas", "2,3"])
            #expect(r.status == 0 && r.stdout.contains("moves-0: reassignment started"), "\(r.stdout) \(r.stderr)")
            // Consumers keep reading meanwhile, and more records arrive.
            let during = try await offPool { try self.fetch(port: cluster.ports[leaderBefore]!, "moves") }
            #expect(during.errorCode == 0 || during.errorCode == 6, "fetch during the move: \(during.errorCode)")
            #expect(try await produceToLeader(cluster, asking: 2, "moves", from: 100, count: 50) == 0)
            let reassigning = metric(cluster, on: 3, "spool_cluster_reassigning_partitions")
            #expect(reassigning == 1 || reassigning == 0, "gauge: \(String(describing: reassigning))")
            let moved = try await waitForPartition(cluster, on: 3, "moves", seconds: 30) { $0.replicaNodes == [2, 3] && Set($0.isrNodes) == [2, 3] }
            try #require(moved != nil, "the reassignment never completed")
            #expect(moved!.leaderId == 2 || moved!.leaderId == 3)
            let listed = try await offPool { try self.listReassignments(port: cluster.ports[1]!) }
            #expect(listed.errorCode == 0 && listed.topics.isEmpty, "still listed: \(listed)")
            #expect(await eventually(seconds: 5) { self.metric(cluster, on: 3, "spool_cluster_reassigning_partitions") == 0 })
            r = try await spool(cluster, ["topic", "reassign", "--list"])
            #expect(r.status == 0 && r.stdout.contains("no reassignment in progress"), "\(r.stdout)")
            // Broker 1 deletes its copy.
            let deleted = await eventually(seconds: 10) {
                cluster.brokers[1]!.logText.contains("deleted topic reassigned away")
                    && !((try? FileManager.default.contentsOfDirectory(atPath: host1)) ?? []).contains { $0.hasPrefix("moves") }
            }
            #expect(deleted, "broker 1 kept its copy: \((try? FileManager.default.contentsOfDirectory(atPath: host1)) ?? [])")
            // The leader serves all 150; broker 3 has every record: it leads once broker 2 is gone and serves the same bytes.
            let all = try #require(try await fetchUntil(cluster, on: moved!.leaderId, "moves", hw: 150, orMore: true))
            #expect(all.errorCode == 0 && all.highWatermark >= 150, "leader \(moved!.leaderId): \(all.errorCode) hw \(all.highWatermark)")
            if moved!.leaderId == 2 {
                cluster.kill9(2)
                let three = try await waitForPartition(cluster, on: 3, "moves", seconds: Double(Self.ttl) + 10) { $0.leaderId == 3 }
                #expect(three != nil, "broker 3 never took over")
            }
            let fromThree = try #require(try await fetchUntil(cluster, on: 3, "moves", hw: all.highWatermark))
            #expect(fromThree.errorCode == 0 && fromThree.highWatermark == all.highWatermark, "broker 3: \(fromThree.errorCode) hw \(fromThree.highWatermark)")
            #expect(fromThree.records.readableBytes == all.records.readableBytes && fromThree.records.readableBytes > 0,
                    "bytes: \(fromThree.records.readableBytes) from 3, \(all.records.readableBytes) from the leader")
        }
    }

    func eventually(seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }
}

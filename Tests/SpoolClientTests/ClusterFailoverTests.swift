import Foundation
import NIOCore
import NIOConcurrencyHelpers
import SpoolClient
import SpoolProtocol
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Spool's own client against three real `spool broker --etcd` processes and a real etcd
/// (RF 3, min ISR 2): an idempotent acks=all producer bootstrapped from one broker that does
/// not lead partition 0 routes every partition's batches to its leader; partition 0's leader
/// is killed with kill -9 while records are in flight; the producer refreshes its metadata,
/// finds the new leader and resends with the same producer id and sequences. Every
/// acknowledged record then reads back exactly once, at its acknowledged offset.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterFailoverTests {
    static let ttl = 3
    static let records = 3_000
    static let partitions: Int32 = 3

    func startBroker(_ id: Int32, _ etcd: EtcdCluster) async throws -> BrokerProcess {
        let directory = NSTemporaryDirectory() + "spool-fo-" + UUID().uuidString
        let endpoints = etcd.endpoints
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", "fo", "--cluster-lease-ttl-seconds", String(Self.ttl)], directory: directory)
        }
    }

    func connectionConfig(port: Int) -> ConnectionConfig {
        var c = ConnectionConfig(host: "127.0.0.1", port: port)
        c.requestTimeoutMillis = 10_000
        return c
    }

    /// Refreshes `router` until `condition` holds on its metadata (at most `seconds`).
    func waitForMetadata(_ router: BrokerRouter, _ topics: [String], seconds: Double, _ condition: (ClusterMetadata) -> Bool) async -> ClusterMetadata? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let m = try? await router.refresh(topics: topics), condition(m) { return m }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test func anIdempotentProducerRidesOutItsLeadersKillAndEveryAcknowledgedRecordReadsBackOnce() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            for id in Int32(1)...3 { brokers[id] = try await startBroker(id, etcd) }
            defer { for b in brokers.values { _ = b.terminate() } }
            let ports = brokers.mapValues(\.port)

            // The cluster through the native Metadata call: three brokers at their native addresses.
            let setup = try await BrokerRouter.connect([connectionConfig(port: ports[1]!)])
            let registered = await waitForMetadata(setup, [], seconds: 20) { $0.clustered && $0.brokers.count == 3 }
            try #require(registered != nil, "the native Metadata never listed 3 brokers")
            for (id, port) in ports { #expect(registered?.brokers[id] == "127.0.0.1:\(port)") }
            try await SpoolAdmin(router: setup).createTopic(
                "fo", partitions: Self.partitions, replicationFactor: 3, configs: ["min.insync.replicas": "2"])
            let replicated = await waitForMetadata(setup, ["fo"], seconds: 20) { m in
                (0..<Self.partitions).allSatisfy { p in
                    m.partitions[TopicPartition("fo", p)].map { $0.leader >= 1 && Set($0.isr) == [1, 2, 3] } ?? false
                }
            }
            let layout = try #require(replicated, "topic fo never had a leader and a full ISR on every partition")
            // Transactions are refused in a cluster (their coordinator's state is one broker's), with why.
            var transactional = ProducerConfig()
            transactional.transactionalId = "fo-txn"
            let refusedProducer = SpoolProducer(router: setup, config: transactional)
            do {
                try await refusedProducer.initTransactions()
                Issue.record("a cluster broker granted a transactional producer id")
            } catch let error as ProducerError {
                #expect(error.code == .transactionRefused && error.message.contains("UNSUPPORTED")
                        && error.message.contains("not supported by a Spool cluster"), "\(error)")
            }
            try await refusedProducer.close()
            await setup.close()
            let victim = layout.leader(of: TopicPartition("fo", 0))!
            let bootstrapId = [Int32(1), 2, 3].first { $0 != victim }!
            print("partition leaders: \((0..<Self.partitions).map { layout.leader(of: TopicPartition("fo", $0))! }); bootstrap \(bootstrapId), victim \(victim)")

            // The producer knows one broker, which does not lead partition 0.
            let router = try await BrokerRouter.connect([connectionConfig(port: ports[bootstrapId]!)])
            var config = ProducerConfig()
            config.idempotent = true
            config.acks = .all
            config.lingerMillis = 2
            config.batchBytes = 4 << 10
            config.deliveryTimeoutMillis = 60_000
            let producer = SpoolProducer(router: router, config: config)
            let outcomes = NIOLockedValueBox<[Int: Result<RecordMetadata, Error>]>([:])
            // When each of partition 0's acknowledgements came (to measure its pause across the kill; not asserted).
            let ackTimes = NIOLockedValueBox<[ContinuousClock.Instant]>([])
            var ackedBeforeKill = -1
            for i in 0..<Self.records {
                // Mid-burst (records are sent in bursts of 50): the last ones are still in flight.
                if i == Self.records / 3 + 25 {
                    ackedBeforeKill = outcomes.withLockedValue { $0.count }
                    kill(brokers[victim]!.pid, SIGKILL)
                    print("killed broker \(victim) (partition 0's leader) with \(i) records sent, \(ackedBeforeKill) acknowledged")
                }
                try await producer.send(topic: "fo", key: Array("k\(i)".utf8), value: Array("v\(i)".utf8)) { result in
                    outcomes.withLockedValue { $0[i] = result }
                    if case .success(let m) = result, m.partition == 0 { ackTimes.withLockedValue { $0.append(.now) } }
                }
                if i % 50 == 49 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await producer.flush()
            try await producer.close()
            brokers[victim]!.process.waitUntilExit()

            let all = outcomes.withLockedValue { $0 }
            #expect(all.count == Self.records)
            var acked: [Int: RecordMetadata] = [:]
            var failures: [String] = []
            for (i, r) in all {
                switch r {
                case .success(let m): acked[i] = m
                case .failure(let e): failures.append("\(i): \(e)")
                }
            }
            let times = ackTimes.withLockedValue { $0 }.sorted()
            let longestPause = zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .zero
            print("acknowledged \(acked.count) of \(Self.records), \(router.refreshCount) metadata refreshes, partition 0's longest pause between acknowledgements \(longestPause) (lease TTL \(Self.ttl) s)")
            #expect(ackedBeforeKill > 0 && ackedBeforeKill < Self.records, "the kill came mid-run")
            #expect(failures.isEmpty, "failed: \(failures.prefix(5))")
            #expect(acked.values.allSatisfy { $0.offset >= 0 })
            let moved = router.metadata?.leader(of: TopicPartition("fo", 0))
            #expect(moved != nil && moved != victim, "the router learnt partition 0's new leader (now \(String(describing: moved)))")

            // Read everything back from the leaders, through a consumer bootstrapped from the same broker.
            let consumer = SpoolConsumer(router: router, config: ConsumerConfig())
            try await consumer.assign(topic: "fo", from: .beginning)
            var read: [TopicPartition: [Int64: String]] = [:]
            var seen: [String: Int] = [:]
            let readDeadline = Date().addingTimeInterval(60)
            while seen.count < acked.count && Date() < readDeadline {
                for record in try await consumer.poll() {
                    let value = record.value.map { String(buffer: $0) } ?? ""
                    read[TopicPartition(record.topic, record.partition), default: [:]][record.offset] = value
                    seen[value, default: 0] += 1
                }
            }
            try await consumer.close()
            await router.close()
            let duplicates = seen.filter { $0.value > 1 }
            #expect(duplicates.isEmpty, "read more than once: \(duplicates.prefix(5))")
            var misplaced: [String] = []
            for (i, m) in acked where read[TopicPartition(m.topic, m.partition)]?[m.offset] != "v\(i)" {
                misplaced.append("v\(i) acknowledged at \(m.partition)/\(m.offset), read \(read[TopicPartition(m.topic, m.partition)]?[m.offset] ?? "nothing")")
            }
            #expect(misplaced.isEmpty, "\(misplaced.count) acknowledged records not at their offsets: \(misplaced.prefix(5))")
            #expect(seen.count == acked.count, "read \(seen.count) distinct records for \(acked.count) acknowledged")
            brokers[victim] = nil
        }
    }
}

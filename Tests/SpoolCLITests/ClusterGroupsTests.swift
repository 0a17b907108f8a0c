import Foundation
import NIOCore
import SpoolKafka
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Consumer groups in a cluster, through Kafka's own calls (a raw client): three `spool broker
/// --etcd` processes and a real etcd. Every broker's FindCoordinator names the same
/// coordinator (the leader of the group's `__consumer_offsets` partition, created on first
/// use), the others answer NOT_COORDINATOR, commits made there are read back there, and after
/// a kill -9 of the coordinator the new coordinator (a new leader of that partition) answers
/// every committed offset.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterGroupsTests {
    static let offsetsPartitions = 3

    func startBroker(_ id: Int32, _ etcd: EtcdCluster) async throws -> BrokerProcess {
        try await ClusterTestSupport.startBroker(id, etcd, clusterId: "cg", extra: ["--offsets-topic-num-partitions", String(Self.offsetsPartitions)])
    }

    func call<Response: KafkaMessage>(_ port: Int, _ api: KafkaApiKey, version: Int16, _ body: some KafkaMessage) throws -> Response {
        try ClusterTestSupport.call(port, api, version: version, body)
    }

    func findCoordinator(_ port: Int, _ group: String) throws -> FindCoordinatorResponse {
        try call(port, .findCoordinator, version: 2, FindCoordinatorRequest(key: group, keyType: 0))
    }

    /// OffsetCommit v2 outside any generation (generation -1, no member: a group without members).
    func commit(_ port: Int, _ group: String, topic: String, _ offsets: [Int32: Int64]) throws -> [Int32: Int16] {
        let request = OffsetCommitRequest(groupId: group, generationId: -1, memberId: "", topics: [
            .init(name: topic, partitions: offsets.sorted { $0.key < $1.key }.map { .init(partitionIndex: $0.key, committedOffset: $0.value, committedMetadata: "m\($0.value)") })])
        let response: OffsetCommitResponse = try call(port, .offsetCommit, version: 2, request)
        var codes: [Int32: Int16] = [:]
        for t in response.topics { for p in t.partitions { codes[p.partitionIndex] = p.errorCode } }
        return codes
    }

    /// OffsetFetch v3: the group-level error and each partition's committed offset.
    func fetch(_ port: Int, _ group: String, topic: String, partitions: [Int32]) throws -> (error: Int16, offsets: [Int32: Int64]) {
        let response: OffsetFetchResponse = try call(port, .offsetFetch, version: 3,
                                                     OffsetFetchRequest(groupId: group, topics: [.init(name: topic, partitionIndexes: partitions)]))
        var offsets: [Int32: Int64] = [:]
        for t in response.topics { for p in t.partitions where p.errorCode == 0 { offsets[p.partitionIndex] = p.committedOffset } }
        let partitionError = response.topics.flatMap(\.partitions).map(\.errorCode).first { $0 != 0 } ?? 0
        return (response.errorCode != 0 ? response.errorCode : partitionError, offsets)
    }

    func metadata(_ port: Int, topics: [String]?) throws -> MetadataResponse {
        try call(port, .metadata, version: 8, MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: false))
    }

    /// Repeats `attempt` until it returns a value, at most `seconds`.
    func eventually<T: Sendable>(_ seconds: Double, _ attempt: @escaping @Sendable () throws -> T?) async throws -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = try? await offPool(attempt) { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test func theOffsetsPartitionLeaderCoordinatesAndCommitsSurviveItsKill() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            defer { for b in brokers.values { _ = b.terminate() } }
            for id in Int32(1)...3 {
                brokers[id] = try await startBroker(id, etcd)
            }
            var ports: [Int32: Int] = [:]
            for (id, b) in brokers { ports[id] = try await offPool { try b.kafkaPort() } }
            let kafka = ports
            let joined = try await eventually(20) { try self.metadata(kafka[1]!, topics: nil).brokers.count == 3 ? true : nil }
            #expect(joined == true, "the three brokers never registered")
            let created: CreateTopicsResponse = try await offPool {
                try self.call(kafka[1]!, .createTopics, version: 4, CreateTopicsRequest(topics: [.init(name: "events", numPartitions: 3, replicationFactor: 3)], timeoutMs: 10_000))
            }
            #expect(created.topics.first?.errorCode == 0, "create: \(created.topics.first?.errorMessage ?? "")")

            // Transactions are refused in a cluster: no transaction coordinator (COORDINATOR_NOT_AVAILABLE
            // with the reason), no transactional producer id; idempotent producer ids still come.
            let txnCoordinator: FindCoordinatorResponse = try await offPool {
                try self.call(kafka[3]!, .findCoordinator, version: 2, FindCoordinatorRequest(key: "t1", keyType: 1))
            }
            #expect(txnCoordinator.errorCode == 15 && txnCoordinator.errorMessage?.contains("not supported by a Spool cluster") == true,
                    "transaction coordinator: \(txnCoordinator.errorCode) \(txnCoordinator.errorMessage ?? "")")
            #expect(brokers[3]!.logText.contains("transactional request refused") && brokers[3]!.logText.contains("transactional_id=t1"),
                    "broker 3 did not log the refusal")
            for transactionalId in ["t1", nil] as [String?] {
                let granted: InitProducerIdResponse = try await offPool {
                    try self.call(kafka[2]!, .initProducerId, version: 2, InitProducerIdRequest(transactionalId: transactionalId, transactionTimeoutMs: 60_000))
                }
                if transactionalId != nil {
                    #expect(granted.errorCode == 15 && granted.producerId == -1, "transactional InitProducerId: \(granted)")
                } else {
                    #expect(granted.errorCode == 0 && granted.producerId >= 0, "idempotent InitProducerId: \(granted)")
                }
            }

            // The first FindCoordinator creates the offsets topic; then every broker names one coordinator.
            let group = "billing"
            let first = try await offPool { try self.findCoordinator(kafka[2]!, group) }
            #expect([0, 15].contains(first.errorCode), "first FindCoordinator: \(first.errorCode) \(first.errorMessage ?? "")")
            let coordinator = try await eventually(20) { () -> Int32? in
                let answers = try (1...3).map { try self.findCoordinator(kafka[Int32($0)]!, group) }
                guard answers.allSatisfy({ $0.errorCode == 0 }), Set(answers.map(\.nodeId)).count == 1 else { return nil }
                return answers[0].nodeId
            }
            let owner = try #require(coordinator, "the brokers never agreed on a coordinator")
            let answer = try await offPool { try self.findCoordinator(kafka[1]!, group) }
            #expect(Int(answer.port) == kafka[owner] && answer.host == "127.0.0.1", "coordinator address \(answer.host):\(answer.port)")
            let offsetsTopic = try await offPool { try self.metadata(kafka[1]!, topics: ["__consumer_offsets"]) }.topics.first
            #expect(offsetsTopic?.isInternal == true && offsetsTopic?.partitions.count == Self.offsetsPartitions,
                    "__consumer_offsets: internal \(offsetsTopic?.isInternal ?? false), \(offsetsTopic?.partitions.count ?? 0) partitions")
            #expect(offsetsTopic?.partitions.allSatisfy { $0.replicaNodes.count == 3 } == true, "the offsets topic is not RF 3")

            // Commits on the coordinator (retried while it loads); the others refuse with NOT_COORDINATOR.
            let committed: [Int32: Int64] = [0: 5, 1: 7, 2: 9]
            let codes = try await eventually(15) { () -> [Int32: Int16]? in
                let codes = try self.commit(kafka[owner]!, group, topic: "events", committed)
                return codes.values.allSatisfy { $0 == 0 } ? codes : nil
            }
            #expect(codes != nil, "commits on the coordinator never succeeded")
            let other = (Int32(1)...3).first { $0 != owner }!
            let refused = try await offPool { try self.commit(kafka[other]!, group, topic: "events", [0: 1]) }
            #expect(refused[0] == 16, "a commit on broker \(other), not the coordinator: \(refused)")
            let elsewhere = try await offPool { try self.fetch(kafka[other]!, group, topic: "events", partitions: [0, 1, 2]) }
            #expect(elsewhere.error == 16, "OffsetFetch on a non-coordinator: \(elsewhere)")
            let read = try await offPool { try self.fetch(kafka[owner]!, group, topic: "events", partitions: [0, 1, 2]) }
            #expect(read.error == 0 && read.offsets == committed, "OffsetFetch on the coordinator: \(read)")

            // kill -9 of the coordinator: a new leader of the offsets partition coordinates, with every commit.
            let killed = brokers[owner]!
            kill(killed.pid, SIGKILL)
            killed.process.waitUntilExit()
            let survivor = other
            let successor = try await eventually(30) { () -> Int32? in
                let a = try self.findCoordinator(kafka[survivor]!, group)
                return a.errorCode == 0 && a.nodeId != owner ? a.nodeId : nil
            }
            let next = try #require(successor, "no new coordinator after the kill of broker \(owner)")
            let started = Date()
            let reloaded = try await eventually(20) { () -> [Int32: Int64]? in
                let r = try self.fetch(kafka[next]!, group, topic: "events", partitions: [0, 1, 2])
                return r.error == 0 ? r.offsets : nil
            }
            print("broker \(owner) killed; broker \(next) coordinates \(group), offsets loaded \(String(format: "%.2f", Date().timeIntervalSince(started))) s after it was named")
            #expect(reloaded == committed, "committed offsets after the failover: \(reloaded ?? [:]), expected \(committed)")
            // And it takes new commits.
            let again = try await eventually(15) { () -> Bool? in
                try self.commit(kafka[next]!, group, topic: "events", [0: 11]).values.allSatisfy { $0 == 0 } ? true : nil
            }
            #expect(again == true, "the new coordinator refused a commit")
            let last = try await offPool { try self.fetch(kafka[next]!, group, topic: "events", partitions: [0]) }
            #expect(last.offsets[0] == 11, "\(last)")
        }
    }
}

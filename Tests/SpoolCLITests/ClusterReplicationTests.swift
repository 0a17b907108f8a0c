import Foundation
import NIOCore
import SpoolKafka
import SpoolTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three real `spool broker --etcd` processes and a real etcd: topics created on one broker are
/// assigned over all three and hosted by their replicas, Metadata (a raw Kafka client) shows the
/// cluster, the controller re-elects leaders after a kill -9, and too large a replication factor is
/// refused with INVALID_REPLICATION_FACTOR.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterReplicationTests {
    static let ttl = 3

    func metadata(port: Int, topics: [String]? = nil) throws -> MetadataResponse {
        try ClusterTestSupport.call(port, .metadata, version: 8,
                                    MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: false), timeoutSeconds: 5)
    }

    func createTopic(port: Int, _ name: String, partitions: Int32, replicationFactor: Int16) throws -> CreateTopicsResponse.Topic {
        try createTopic(port: port, .init(name: name, numPartitions: partitions, replicationFactor: replicationFactor))
    }

    /// CreateTopics v4 with a manual replica assignment (one list per partition).
    func createTopic(port: Int, _ name: String, assignment: [[Int32]], numPartitions: Int32 = -1) throws -> CreateTopicsResponse.Topic {
        try createTopic(port: port, .init(name: name, numPartitions: numPartitions, replicationFactor: -1, assignments: assignment.enumerated().map {
            .init(partitionIndex: Int32($0.offset), brokerIds: $0.element)
        }))
    }

    func createTopic(port: Int, _ topic: CreateTopicsRequest.Topic) throws -> CreateTopicsResponse.Topic {
        let response: CreateTopicsResponse = try ClusterTestSupport.call(port, .createTopics, version: 4, CreateTopicsRequest(topics: [topic], timeoutMs: 10_000))
        return response.topics[0]
    }

    /// CreatePartitions v1 growing `name` to `count`, the new partitions' replicas given.
    func createPartitions(port: Int, _ name: String, count: Int32, assignment: [[Int32]]) throws -> CreatePartitionsResponse.Result {
        let request = CreatePartitionsRequest(topics: [.init(name: name, count: count, assignments: assignment.map { .init(brokerIds: $0) })], timeoutMs: 10_000)
        let response: CreatePartitionsResponse = try ClusterTestSupport.call(port, .createPartitions, version: 1, request)
        return response.results[0]
    }

    /// Polls `metadata` on `port` until `condition` holds (at most `seconds`).
    func waitForMetadata(port: Int, seconds: Double, _ condition: (MetadataResponse) -> Bool) async throws -> MetadataResponse? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let m = try? await offPool({ try self.metadata(port: port) }), condition(m) { return m }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test func topicsSpreadOverThreeBrokersAndLeadersMoveOnKill() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            for id in Int32(1)...3 {
                brokers[id] = try await ClusterTestSupport.startBroker(id, etcd, clusterId: "cr", ttlSeconds: Self.ttl)
            }
            defer { for b in brokers.values { _ = b.terminate() } }
            var kafkaPorts: [Int32: Int] = [:]
            for (id, b) in brokers { kafkaPorts[id] = try await offPool { try b.kafkaPort() } }
            let ports = kafkaPorts
            let registered = try await waitForMetadata(port: ports[1]!, seconds: 20) { $0.brokers.count == 3 && $0.controllerId >= 1 }
            #expect(registered != nil, "Metadata never listed 3 brokers and a controller")
            #expect(Set(registered?.brokers.map(\.nodeId) ?? []) == [1, 2, 3])
            for b in registered?.brokers ?? [] { #expect(Int(b.port) == ports[b.nodeId]) }

            // RF 3 on broker 1: every broker's Metadata shows it, leaders spread, ISR full.
            let created = try await offPool { try self.createTopic(port: ports[1]!, "orders", partitions: 6, replicationFactor: 3) }
            #expect(created.errorCode == 0, "create: \(created.errorMessage ?? "")")
            for id in Int32(1)...3 {
                let m = try await waitForMetadata(port: ports[id]!, seconds: 10) { $0.topics.first { $0.name == "orders" }?.partitions.count == 6 }
                let topic = try #require(m?.topics.first { $0.name == "orders" }, "broker \(id) does not show the topic")
                for p in topic.partitions {
                    #expect(p.errorCode == 0 && Set(p.replicaNodes) == [1, 2, 3] && Set(p.isrNodes) == [1, 2, 3])
                    #expect(p.leaderId == p.replicaNodes[0] && p.leaderEpoch == 0 && p.offlineReplicas.isEmpty)
                }
                #expect(Set(topic.partitions.map(\.leaderId)) == [1, 2, 3], "leaders not spread: \(topic.partitions.map(\.leaderId))")
            }
            // Every replica hosts it.
            for (id, b) in brokers {
                let hosted = await eventually(seconds: 10) { b.logText.contains("hosting topic") && b.logText.contains("orders") }
                #expect(hosted, "broker \(id) did not host the topic")
            }

            // The CLI on the native listener: RF 3 through broker 2, described on broker 3 with each
            // partition's leader, epoch, replicas and ISR once broker 3 hosts it.
            let (b1, b2, b3) = (brokers[1]!, brokers[2]!, brokers[3]!)
            var r = try await offPool { try b2.spool(["topic", "create", "cli-orders", "--partitions", "2", "--replication-factor", "3"]) }
            #expect(r.status == 0 && r.stdout.contains("created topic cli-orders with 2 partitions, replication factor 3"), "\(r.stdout) \(r.stderr)")
            func fullyReplicated(_ r: CommandResult) -> Bool {
                // partition start end size segments leader epoch replicas isr: all three replicas, all in sync.
                let rows = r.stdout.split(separator: "\n").map { $0.split(separator: "\t") }.filter { $0.count == 9 && Int($0[0]) != nil }
                return r.status == 0 && rows.count == 2
                    && rows.allSatisfy { Set($0[7].split(separator: ",")) == ["1", "2", "3"] && Set($0[8].split(separator: ",")) == ["1", "2", "3"] }
            }
            let describeDeadline = Date().addingTimeInterval(10)
            repeat {
                r = try await offPool { try b3.spool(["topic", "describe", "cli-orders"]) }
                if fullyReplicated(r) { break }
                try await Task.sleep(for: .milliseconds(200))
            } while Date() < describeDeadline
            #expect(fullyReplicated(r), "describe: \(r.stdout) \(r.stderr)")
            #expect(r.stdout.contains("replication factor 3") && r.stdout.contains("\tleader\tepoch\treplicas\tisr"))
            r = try await offPool { try b1.spool(["topic", "create", "cli-wide", "--replication-factor", "4"]) }
            #expect(r.status != 0 && r.stderr.contains("INVALID_ARGUMENT"), "\(r.stderr)")

            // RF 4 on 3 brokers: refused.
            let tooMany = try await offPool { try self.createTopic(port: ports[2]!, "wide", partitions: 1, replicationFactor: 4) }
            #expect(tooMany.errorCode == 38, "RF 4: \(tooMany.errorCode) \(tooMany.errorMessage ?? "")")

            // Manual replica assignments (kafka-topics --replica-assignment): placed as given, the
            // first replica leading; unknown brokers, uneven lists and counts beside them refused.
            let manual = try await offPool { try self.createTopic(port: ports[2]!, "manual", assignment: [[3, 1], [1, 2]]) }
            #expect(manual.errorCode == 0, "manual: \(manual)")
            let grown = try await offPool { try self.createPartitions(port: ports[3]!, "manual", count: 3, assignment: [[2, 3]]) }
            #expect(grown.errorCode == 0, "grow with an assignment: \(grown.errorCode) \(grown.errorMessage ?? "")")
            let placed = try await waitForMetadata(port: ports[1]!, seconds: 10) { m in
                m.topics.first { $0.name == "manual" }?.partitions.count == 3
            }
            let byPartition = Dictionary(uniqueKeysWithValues: (placed?.topics.first { $0.name == "manual" }?.partitions ?? []).map { ($0.partitionIndex, $0) })
            #expect(byPartition[0]?.replicaNodes == [3, 1] && byPartition[0]?.leaderId == 3, "partition 0: \(String(describing: byPartition[0]))")
            #expect(byPartition[1]?.replicaNodes == [1, 2] && byPartition[1]?.leaderId == 1, "partition 1: \(String(describing: byPartition[1]))")
            #expect(byPartition[2]?.replicaNodes == [2, 3] && byPartition[2]?.leaderId == 2, "partition 2: \(String(describing: byPartition[2]))")
            let refusals: [([[Int32]], Int32, Int16, String)] = [([[1, 9]], -1, 39, "unknown brokers [9]"),
                                                     ([[1, 2], [3]], -1, 39, "every partition needs the same number"),
                                                     ([[1, 1]], -1, 39, "name a broker twice"),
                                                     ([[1, 2]], 1, 42, "must be -1")]
            for (assignment, count, code, words) in refusals {
                let refused = try await offPool { try self.createTopic(port: ports[1]!, "manual-bad", assignment: assignment, numPartitions: count) }
                #expect(refused.errorCode == code && refused.errorMessage?.contains(words) == true,
                        "\(assignment): \(refused.errorCode) \(refused.errorMessage ?? "")")
            }
            let wrongFactor = try await offPool { try self.createPartitions(port: ports[1]!, "manual", count: 4, assignment: [[1]]) }
            #expect(wrongFactor.errorCode == 39 && wrongFactor.errorMessage?.contains("replication factor 2") == true,
                    "grow with RF 1 lists: \(wrongFactor.errorCode) \(wrongFactor.errorMessage ?? "")")

            // kill -9 of partition 0's leader (the controller if it leads it): another ISR member leads at epoch + 1.
            let before = try #require(try await offPool { try self.metadata(port: ports[1]!, topics: ["orders"]) }.topics.first?.partitions.first { $0.partitionIndex == 0 })
            let victim = before.leaderId
            let controllerBefore = registered?.controllerId ?? -1
            let killedAt = Date()
            kill(brokers[victim]!.pid, SIGKILL)
            let survivor = [Int32(1), 2, 3].first { $0 != victim }!
            let after = try await waitForMetadata(port: ports[survivor]!, seconds: Double(Self.ttl) + 10) { m in
                guard let p = m.topics.first(where: { $0.name == "orders" })?.partitions.first(where: { $0.partitionIndex == 0 }) else { return false }
                return p.leaderId != victim && p.leaderId >= 0
            }
            let elapsed = Date().timeIntervalSince(killedAt)
            print("partition 0's leader moved from \(victim) in \(elapsed) s (lease TTL \(Self.ttl) s)")
            let moved = try #require(after?.topics.first { $0.name == "orders" }?.partitions.first { $0.partitionIndex == 0 }, "no new leader after kill -9 of \(victim)")
            #expect(elapsed < Double(Self.ttl) + 2 + 1.5, "failover took \(elapsed) s")
            #expect(moved.leaderEpoch == before.leaderEpoch + 1 && !moved.isrNodes.contains(victim) && moved.offlineReplicas == [victim])
            #expect(after!.brokers.count == 2 && !after!.brokers.contains { $0.nodeId == victim })
            // Every partition has a live leader, the dead broker in none of their ISRs.
            let settled = try await waitForMetadata(port: ports[survivor]!, seconds: 5) { m in
                m.topics.first { $0.name == "orders" }!.partitions.allSatisfy { $0.leaderId >= 0 && $0.leaderId != victim && !$0.isrNodes.contains(victim) }
            }
            #expect(settled != nil, "not every partition re-elected")

            // The controller (new if the victim was it) still assigns a new topic over the live brokers.
            let controller = try await waitForMetadata(port: ports[survivor]!, seconds: Double(Self.ttl) + 10) { $0.controllerId >= 0 && $0.controllerId != victim }
            #expect(controller != nil, "no live controller after the kill (was \(controllerBefore))")
            let next = try await offPool { try self.createTopic(port: ports[survivor]!, "after-kill", partitions: 4, replicationFactor: 2) }
            #expect(next.errorCode == 0, "create after kill: \(next.errorMessage ?? "")")
            let shown = try await waitForMetadata(port: ports[survivor]!, seconds: 10) { $0.topics.first { $0.name == "after-kill" }?.partitions.count == 4 }
            for p in shown?.topics.first(where: { $0.name == "after-kill" })?.partitions ?? [] {
                #expect(p.replicaNodes.count == 2 && !p.replicaNodes.contains(victim) && p.leaderId == p.replicaNodes[0])
            }
            #expect(shown != nil)
            let rf3 = try await offPool { try self.createTopic(port: ports[survivor]!, "too-wide-now", partitions: 1, replicationFactor: 3) }
            #expect(rf3.errorCode == 38)
            brokers[victim] = nil
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

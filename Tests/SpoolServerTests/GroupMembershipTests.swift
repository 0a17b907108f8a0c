import Foundation
import NIOCore
import SpoolBroker
import SpoolClient
import SpoolProtocol
import SpoolServer
import Synchronization
import Testing

@Suite("Consumer groups over the native protocol", .serialized)
struct GroupMembershipTests {
    /// A server whose coordinator forms generations at once and allows short sessions, so the test runs in a second or two.
    static func startServer() async throws -> (SpoolServer, String) {
        let directory = NSTemporaryDirectory() + "spool-groups-" + UUID().uuidString
        var config = BrokerConfig(dataDirectory: directory)
        config.port = 0
        config.threads = 2
        config.groups.initialRebalanceDelayMillis = 0
        config.groups.minSessionTimeoutMillis = 500
        return (try await SpoolServer.start(config: config), directory)
    }

    static var fastMembership: GroupMembership.Config {
        var c = GroupMembership.Config()
        c.sessionTimeoutMillis = 1_000
        c.heartbeatIntervalMillis = 100
        c.rebalanceTimeoutMillis = 5_000
        return c
    }

    static func all(_ a: GroupMembership.Assignment) -> [String] {
        a.flatMap { t, ps in ps.map { "\(t)-\($0)" } }.sorted()
    }

    @Test("Members split the partitions, read and commit as members; one leaves and the other takes over")
    func splitReadCommitLeave() async throws {
        let (server, directory) = try await Self.startServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: server.port)
        let admin = SpoolAdmin(connection)
        _ = try await admin.createTopic("t", partitions: 4)
        let producer = SpoolProducer(connection: connection)
        for p in Int32(0)..<4 {
            for i in 0..<5 { _ = try await producer.send(topic: "t", partition: p, value: Array("p\(p)-\(i)".utf8)) }
        }

        let events = RebalanceLog()
        let a = SpoolConsumer(connection: try await SpoolConnection.connect(host: "127.0.0.1", port: server.port), group: "g", maxWaitMillis: 50)
        let ma = try await a.subscribe(topics: ["t"], group: "g", from: .beginning, config: Self.fastMembership) { events.add("a", $0) }
        #expect(Self.all(ma.assignment) == ["t-0", "t-1", "t-2", "t-3"], "alone, a member owns every partition")
        let b = SpoolConsumer(connection: try await SpoolConnection.connect(host: "127.0.0.1", port: server.port), group: "g", maxWaitMillis: 50)
        let mb = try await b.subscribe(topics: ["t"], group: "g", from: .beginning, config: Self.fastMembership) { events.add("b", $0) }
        #expect(await waitFor { ma.assignment.values.joined().count == 2 })
        #expect(Set(Self.all(ma.assignment)).isDisjoint(with: Self.all(mb.assignment)))
        #expect(Set(Self.all(ma.assignment) + Self.all(mb.assignment)) == ["t-0", "t-1", "t-2", "t-3"])
        #expect(ma.generation.generationId == mb.generation.generationId)
        #expect(events.lines.contains("a revoked t-0,t-1,t-2,t-3"), "eager protocol: everything is revoked before the rejoin: \(events.lines)")

        // Each reads its own partitions from the beginning and commits as a member of the generation.
        var readA: [ConsumerRecord] = [], readB: [ConsumerRecord] = []
        for _ in 0..<100 where readA.count + readB.count < 20 {
            readA += try await a.poll()
            readB += try await b.poll()
        }
        #expect(readA.count == 10 && readB.count == 10)
        #expect(Set(readA.map(\.partition)) == Set(ma.assignment["t"]!) && Set(readB.map(\.partition)) == Set(mb.assignment["t"]!))
        try await a.commit()
        try await b.commit()
        let committed = try await admin.committedOffsets(group: "g", topics: ["t"])
        #expect(committed.map(\.offset) == [5, 5, 5, 5])

        // A stale generation's commit is refused with a code the member can act on.
        var stale = Spool_V1_CommitOffsetsRequest()
        stale.group = "g"
        stale.generationID = ma.generation.generationId - 1
        stale.memberID = ma.generation.memberId
        var o = Spool_V1_GroupOffset()
        o.topic = "t"
        o.offset = 1
        stale.offsets = [o]
        let refused: Spool_V1_CommitOffsetsResponse = try await connection.call(.commitOffsets, stale)
        #expect(refused.error == .illegalGeneration)

        // b leaves: a gets every partition within a heartbeat or two.
        await b.unsubscribe()
        #expect(await waitFor { Self.all(ma.assignment) == ["t-0", "t-1", "t-2", "t-3"] })
        var describe = Spool_V1_DescribeGroupsRequest()
        describe.groups = ["g", "nobody"]
        let described: Spool_V1_DescribeGroupsResponse = try await connection.call(.describeGroups, describe)
        #expect(described.groups.map(\.state) == ["Stable", "Dead"])
        #expect(described.groups[1].error == .groupIDNotFound)
        #expect(described.groups[0].protocolName == "range" && described.groups[0].members.count == 1)
        let assignment = try ConsumerProtocol.decodeAssignment(Array(described.groups[0].members[0].assignment))
        #expect(assignment == ["t": [0, 1, 2, 3]])
        await a.unsubscribe()
        try await server.shutdown()
    }

    @Test("A member that stops heartbeating loses its partitions after the session timeout")
    func sessionExpiry() async throws {
        let (server, directory) = try await Self.startServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: server.port)
        _ = try await SpoolAdmin(connection).createTopic("t", partitions: 2)
        let a = SpoolConsumer(connection: try await SpoolConnection.connect(host: "127.0.0.1", port: server.port), group: "g")
        let ma = try await a.subscribe(topics: ["t"], group: "g", config: Self.fastMembership)
        // A hand-made member that joins and syncs once, then goes silent.
        var join = Spool_V1_JoinGroupRequest()
        join.group = "g"
        join.sessionTimeoutMs = 1_000
        join.rebalanceTimeoutMs = 5_000
        join.protocolType = "consumer"
        var range = Spool_V1_GroupProtocol()
        range.name = "range"
        range.metadata = .init(ConsumerProtocol.encodeSubscription(topics: ["t"]))
        join.protocols = [range]
        var joined: Spool_V1_JoinGroupResponse = try await connection.call(.joinGroup, join)
        #expect(joined.error == .memberIDRequired)
        join.memberID = joined.memberID
        joined = try await connection.call(.joinGroup, join)
        #expect(joined.error == .none)
        var sync = Spool_V1_SyncGroupRequest()
        sync.group = "g"
        sync.generationID = joined.generationID
        sync.memberID = joined.memberID
        let synced: Spool_V1_SyncGroupResponse = try await connection.call(.syncGroup, sync)
        #expect(synced.error == .none)
        #expect(await waitFor { ma.assignment.values.joined().count == 1 }, "the silent member got a partition")
        #expect(await waitFor(seconds: 10) { ma.assignment["t"] == [0, 1] }, "after its session timeout the silent member's partition comes back")
        var heartbeat = Spool_V1_HeartbeatRequest()
        heartbeat.group = "g"
        heartbeat.memberID = joined.memberID
        heartbeat.generationID = joined.generationID
        let late: Spool_V1_HeartbeatResponse = try await connection.call(.heartbeat, heartbeat)
        #expect(late.error == .unknownMemberID)
        await a.unsubscribe()
        try await server.shutdown()
    }

    @Test("A static member restarted elsewhere fences the old process, whose next poll fails")
    func staticMemberFencing() async throws {
        let (server, directory) = try await Self.startServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: server.port)
        _ = try await SpoolAdmin(connection).createTopic("t", partitions: 2)
        var config = Self.fastMembership
        config.groupInstanceId = "worker-1"
        let old = SpoolConsumer(connection: try await SpoolConnection.connect(host: "127.0.0.1", port: server.port), group: "g", maxWaitMillis: 20)
        let first = try await old.subscribe(topics: ["t"], group: "g", config: config)
        let replacement = SpoolConsumer(connection: try await SpoolConnection.connect(host: "127.0.0.1", port: server.port), group: "g")
        let second = try await replacement.subscribe(topics: ["t"], group: "g", config: config)
        #expect(second.generation.generationId == first.generation.generationId, "the slot is taken over without a rebalance")
        #expect(second.assignment == ["t": [0, 1]])
        #expect(await waitFor { first.failure?.code == .fencedInstanceId })
        await #expect(throws: GroupMembershipError.self) { _ = try await old.poll() }
        await replacement.unsubscribe()
        try await server.shutdown()
    }

    @Test("InitProducerId: a fresh id, then the same id with the epoch bumped")
    func initProducerId() async throws {
        let (server, directory) = try await Self.startServer()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: server.port)
        let first: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, Spool_V1_InitProducerIdRequest())
        let second: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, Spool_V1_InitProducerIdRequest())
        #expect(first.producerEpoch == 0 && second.producerID == first.producerID + 1)
        var bump = Spool_V1_InitProducerIdRequest()
        bump.producerID = first.producerID
        bump.producerEpoch = 0
        let bumped: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, bump)
        #expect(bumped.producerID == first.producerID && bumped.producerEpoch == 1)
        try await server.shutdown()
    }

    @Test("Kafka's consumer protocol: subscriptions and assignments round-trip; later versions' extra fields are read past")
    func consumerProtocol() throws {
        let subscription = ConsumerProtocol.encodeSubscription(topics: ["a", "bb"])
        #expect(try ConsumerProtocol.decodeSubscription(subscription) == ["a", "bb"])
        // v1 as Kafka's Java client writes it: version 1, topics, null user data, owned partitions.
        var v1 = ByteBuffer()
        v1.writeInteger(Int16(1))
        v1.writeInteger(Int32(1)); v1.writeInteger(Int16(3)); v1.writeString("top")
        v1.writeInteger(Int32(-1))
        v1.writeInteger(Int32(1)); v1.writeInteger(Int16(3)); v1.writeString("top"); v1.writeInteger(Int32(1)); v1.writeInteger(Int32(7))
        #expect(try ConsumerProtocol.decodeSubscription(Array(v1.readableBytesView)) == ["top"])
        let assignment = ConsumerProtocol.encodeAssignment(["t": [3, 1], "u": [0]])
        #expect(try ConsumerProtocol.decodeAssignment(assignment) == ["t": [1, 3], "u": [0]])
        #expect(try ConsumerProtocol.decodeAssignment([]) == [:])
        // A count that the bytes cannot hold is refused before anything is allocated.
        #expect(throws: ConsumerProtocol.DecodingError.self) { try ConsumerProtocol.decodeSubscription([0, 0, 0x7F, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: ConsumerProtocol.DecodingError.self) { try ConsumerProtocol.decodeAssignment([0, 0, 0, 0, 0, 1, 0, 9, 0x61]) }
    }

    @Test("The range assignor gives consecutive ranges, the first members one more")
    func rangeAssignor() {
        let two = RangeAssignor.assign(subscriptions: ["m1": ["t"], "m2": ["t"]], partitionCounts: ["t": 5])
        #expect(two == ["m1": ["t": [0, 1, 2]], "m2": ["t": [3, 4]]])
        let three = RangeAssignor.assign(subscriptions: ["c": ["t"], "a": ["t"], "b": ["t"]], partitionCounts: ["t": 2])
        #expect(three == ["a": ["t": [0]], "b": ["t": [1]], "c": [:]], "sorted by member id; the last gets nothing")
        let mixed = RangeAssignor.assign(subscriptions: ["a": ["t", "u"], "b": ["u"]], partitionCounts: ["t": 2, "u": 2])
        #expect(mixed == ["a": ["t": [0, 1], "u": [0]], "b": ["u": [1]]])
        let missing = RangeAssignor.assign(subscriptions: ["a": ["nope"]], partitionCounts: [:])
        #expect(missing == ["a": [:]])
    }
}

/// Rebalance events as "member revoked|assigned partitions" lines.
final class RebalanceLog: Sendable {
    private let log = Mutex<[String]>([])

    func add(_ member: String, _ event: GroupMembership.RebalanceEvent) {
        let line: String
        switch event {
        case .revoked(let a): line = "\(member) revoked \(GroupMembershipTests.all(a).joined(separator: ","))"
        case .assigned(let a, _): line = "\(member) assigned \(GroupMembershipTests.all(a).joined(separator: ","))"
        }
        log.withLock { $0.append(line) }
    }

    var lines: [String] { log.withLock { $0 } }
}

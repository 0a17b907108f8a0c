import Foundation
import NIOCore
import NIOPosix
import SpoolBroker
import SpoolRecords
import SpoolSecurity
import Testing

@testable import SpoolKafka

/// One more client connection to a harness's listener, logged in with SASL PLAIN.
final class SaslClient {
    let channel: Channel
    let collector = Collector()
    var responses: AsyncStream<ByteBuffer>.AsyncIterator
    var correlationId: Int32 = 0

    init(_ h: KafkaHarness, user: String, password: String) async throws {
        let collector = self.collector
        channel = try await ClientBootstrap(group: h.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ResponseDecoder()))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: h.listener.port).get()
        responses = collector.stream.makeAsyncIterator()
        var handshake = try await call(.saslHandshake, version: 1, SaslHandshakeRequest(mechanism: "PLAIN"))
        #expect(try SaslHandshakeResponse(from: &handshake, version: 1).errorCode == 0)
        var answer = try await call(.saslAuthenticate, version: 1,
                                    SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: Array("\0\(user)\0\(password)".utf8))))
        let authenticated = try SaslAuthenticateResponse(from: &answer, version: 1)
        guard authenticated.errorCode == 0 else { throw SecurityError(.authenticationFailed, "\(user): \(authenticated.errorCode)") }
    }

    /// Sends a request (non-flexible versions only: header v1) and returns the response body.
    func call<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, _ body: M) async throws -> ByteBuffer {
        correlationId += 1
        var writer = KafkaWriter()
        writer.writeInt32(0)
        KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlationId, clientId: "acl-test").write(to: &writer)
        body.write(to: &writer, version: version)
        writer.buffer.setInteger(Int32(writer.buffer.readableBytes - 4), at: 0)
        try await channel.writeAndFlush(writer.buffer)
        guard var frame = await responses.next() else { throw KafkaDecodingError(.truncated, "connection closed") }
        #expect(frame.readInteger(as: Int32.self) == correlationId)
        return frame
    }

    func close() async { try? await channel.close() }

    // The calls the tests make, decoded.

    func produce(_ topic: String, transactionalId: String? = nil) async throws -> Int16 {
        var builder = RecordBatchBuilder()
        builder.append(key: nil, value: Array("v".utf8), timestamp: 1_700_000_000_000)
        let request = ProduceRequest(transactionalId: transactionalId, acks: -1, timeoutMs: 5000,
                                     topicData: [.init(name: topic, partitionData: [.init(index: 0, records: .buffer(try builder.build()))])])
        var body = try await call(.produce, version: 8, request)
        return try ProduceResponse(from: &body, version: 8).responses.first?.partitionResponses.first?.errorCode ?? -999
    }

    func fetch(_ topic: String) async throws -> Int16 {
        let request = FetchRequest(maxWaitMs: 0, minBytes: 0, topics: [.init(topic: topic, partitions: [
            .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20),
        ])])
        var body = try await call(.fetch, version: 11, request)
        return try FetchResponse(from: &body, version: 11).responses.first { $0.topic == topic }?.partitions.first?.errorCode ?? -999
    }

    func listOffsets(_ topic: String) async throws -> Int16 {
        var body = try await call(.listOffsets, version: 5, ListOffsetsRequest(replicaId: -1, topics: [.init(name: topic, partitions: [.init(partitionIndex: 0, timestamp: -1)])]))
        return try ListOffsetsResponse(from: &body, version: 5).topics.first?.partitions.first?.errorCode ?? -999
    }

    /// Metadata v8: nil asks for every topic. (name → error code).
    func metadata(_ topics: [String]?, autoCreate: Bool = false) async throws -> [String: Int16] {
        var body = try await call(.metadata, version: 8, MetadataRequest(topics: topics?.map { .init(name: $0) }, allowAutoTopicCreation: autoCreate))
        let response = try MetadataResponse(from: &body, version: 8)
        return Dictionary(response.topics.map { ($0.name ?? "", $0.errorCode) }, uniquingKeysWith: { a, _ in a })
    }

    func createTopic(_ name: String) async throws -> Int16 {
        var body = try await call(.createTopics, version: 4, CreateTopicsRequest(topics: [.init(name: name, numPartitions: 1, replicationFactor: -1)]))
        return try CreateTopicsResponse(from: &body, version: 4).topics.first?.errorCode ?? -999
    }

    func joinGroup(_ group: String) async throws -> Int16 {
        let request = JoinGroupRequest(groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 1000, memberId: "", protocolType: "consumer",
                                       protocols: [.init(name: "range", metadata: ByteBuffer())])
        var body = try await call(.joinGroup, version: 3, request)
        return try JoinGroupResponse(from: &body, version: 3).errorCode
    }

    func commit(_ group: String, _ topic: String) async throws -> Int16 {
        let request = OffsetCommitRequest(groupId: group, generationId: -1, memberId: "", topics: [.init(name: topic, partitions: [.init(partitionIndex: 0, committedOffset: 1)])])
        var body = try await call(.offsetCommit, version: 7, request)
        return try OffsetCommitResponse(from: &body, version: 7).topics.first?.partitions.first?.errorCode ?? -999
    }

    func findCoordinator(_ key: String, type: Int8 = 0) async throws -> Int16 {
        var body = try await call(.findCoordinator, version: 2, FindCoordinatorRequest(key: key, keyType: type))
        return try FindCoordinatorResponse(from: &body, version: 2).errorCode
    }

    func initProducerId(transactionalId: String?) async throws -> Int16 {
        var body = try await call(.initProducerId, version: 1, InitProducerIdRequest(transactionalId: transactionalId, transactionTimeoutMs: 10_000))
        return try InitProducerIdResponse(from: &body, version: 1).errorCode
    }

    func createAcl(_ topic: String) async throws -> Int16 {
        let request = CreateAclsRequest(creations: [.init(resourceType: 2, resourceName: topic, resourcePatternType: 3, principal: "User:x",
                                                          host: "*", operation: 3, permissionType: 3)])
        var body = try await call(.createAcls, version: 1, request)
        return try CreateAclsResponse(from: &body, version: 1).results.first?.errorCode ?? -999
    }
}

/// The authorizer enforced on the Kafka APIs, over real sockets, SASL PLAIN principals:
/// Kafka's denial codes (29 per partition, 30, 31, 53), Metadata hiding topics, prefixed
/// ACLs, DENY over ALLOW, super users and `allow.everyone.if.no.acl.found`.
@Suite(.serialized) struct KafkaAuthorizationTests {
    static let denied = (topic: KafkaErrorCode.topicAuthorizationFailed.rawValue, group: KafkaErrorCode.groupAuthorizationFailed.rawValue,
                         cluster: KafkaErrorCode.clusterAuthorizationFailed.rawValue, txn: KafkaErrorCode.transactionalIdAuthorizationFailed.rawValue)

    /// A SASL_PLAINTEXT listener, the authorizer on, `User:admin` a super user; users admin, alice, bob.
    static func harness(allowEveryone: Bool = false) async throws -> KafkaHarness {
        let directory = NSTemporaryDirectory() + "spool-acl-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try CredentialStore(directory: directory)
        for user in ["admin", "alice", "bob"] { try store.upsert(user: user, try .derive(password: "\(user)-pw", mechanism: .sha256)) }
        return try await KafkaHarness(kafka: {
            $0.securityProtocol = .saslPlaintext
            $0.credentials = store
        }, broker: {
            $0.authorization = .init(enabled: true, superUsers: ["User:admin"], allowEveryoneIfNoAclFound: allowEveryone)
        })
    }

    static func allow(_ principal: String, _ operation: AclOperation, _ type: AclResourceType, _ name: String,
                      _ pattern: AclPatternType = .literal) -> AclBinding {
        AclBinding(resourceType: type, resourceName: name, patternType: pattern, principal: principal, operation: operation, permission: .allow)
    }

    @Test func topicDenialsArePerPartition() async throws {
        let h = try await Self.harness()
        for t in ["orders", "secret"] { _ = try await h.broker.createTopic(t, partitions: 1) }
        try await h.broker.createAcls([Self.allow("User:alice", .write, .topic, "orders"), Self.allow("User:alice", .read, .topic, "orders")])
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        #expect(try await alice.produce("orders") == 0)
        #expect(try await alice.produce("secret") == Self.denied.topic)
        #expect(try await alice.fetch("orders") == 0)
        #expect(try await alice.fetch("secret") == Self.denied.topic)
        // READ implies DESCRIBE: ListOffsets on orders is allowed.
        #expect(try await alice.listOffsets("orders") == 0)
        #expect(try await alice.listOffsets("secret") == Self.denied.topic)
        // Nothing was written to the refused topic.
        #expect(try h.broker.listOffset(TopicPartition("secret", 0), .latest).offset == 0)
        await alice.close()
        try await h.stop()
    }

    @Test func metadataHidesTopicsAndAutoCreateNeedsCreate() async throws {
        let h = try await Self.harness()
        for t in ["orders", "secret"] { _ = try await h.broker.createTopic(t, partitions: 1) }
        try await h.broker.createAcls([
            Self.allow("User:alice", .describe, .topic, "orders"),
            Self.allow("User:alice", .all, .topic, "auto.", .prefixed),
        ])
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        #expect(try await alice.metadata(nil) == ["orders": 0], "every topic: only those alice may describe")
        #expect(try await alice.metadata(["secret"]) == ["secret": Self.denied.topic])
        // Auto-creation: CREATE (here ALL on the prefix auto.) creates; DESCRIBE alone does not.
        #expect(try await alice.metadata(["auto.one"], autoCreate: true) == ["auto.one": 0])
        #expect(h.broker.partitionCount(of: "auto.one") == 1)
        #expect(try await alice.metadata(["other"], autoCreate: true) == ["other": Self.denied.topic])
        #expect(h.broker.partitionCount(of: "other") == nil)
        let admin = try await SaslClient(h, user: "admin", password: "admin-pw")
        #expect(Set(try await admin.metadata(nil).keys) == ["orders", "secret", "auto.one"], "a super user sees every topic")
        await alice.close()
        await admin.close()
        try await h.stop()
    }

    @Test func groupDenialsAndTopicReadOnCommit() async throws {
        let h = try await Self.harness()
        for t in ["orders", "secret"] { _ = try await h.broker.createTopic(t, partitions: 1) }
        try await h.broker.createAcls([Self.allow("User:alice", .read, .group, "app"), Self.allow("User:alice", .read, .topic, "orders")])
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        #expect(try await alice.findCoordinator("app") == 0)
        #expect(try await alice.findCoordinator("other") == Self.denied.group)
        #expect(try await alice.joinGroup("other") == Self.denied.group)
        #expect(try await alice.commit("other", "orders") == Self.denied.group)
        #expect(try await alice.commit("app", "secret") == Self.denied.topic)
        #expect(try await alice.commit("app", "orders") == 0)
        await alice.close()
        try await h.stop()
    }

    @Test func createTopicsNeedsCreateOnTheClusterOrTheTopic() async throws {
        let h = try await Self.harness()
        let bob = try await SaslClient(h, user: "bob", password: "bob-pw")
        #expect(try await bob.createTopic("anything") == Self.denied.cluster, "bob may create no topic at all: 31")
        try await h.broker.createAcls([Self.allow("User:bob", .create, .topic, "team.", .prefixed)])
        #expect(try await bob.createTopic("team.a") == 0)
        #expect(try await bob.createTopic("other") == Self.denied.topic, "bob may create some topics, not this one: 29")
        try await h.broker.createAcls([Self.allow("User:bob", .create, .cluster, AclResourceType.clusterName)])
        #expect(try await bob.createTopic("other") == 0, "CREATE on the cluster creates any topic")
        #expect(try await bob.createAcl("orders") == Self.denied.cluster, "CreateAcls needs ALTER on the cluster")
        await bob.close()
        try await h.stop()
    }

    @Test func prefixedAllowAndDenyWins() async throws {
        let h = try await Self.harness()
        for t in ["logs.public", "logs.private"] { _ = try await h.broker.createTopic(t, partitions: 1) }
        try await h.broker.createAcls([
            Self.allow("User:*", .read, .topic, "logs.", .prefixed),
            AclBinding(resourceType: .topic, resourceName: "logs.private", principal: "User:alice", operation: .read, permission: .deny),
        ])
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        let bob = try await SaslClient(h, user: "bob", password: "bob-pw")
        #expect(try await alice.fetch("logs.public") == 0)
        #expect(try await alice.fetch("logs.private") == Self.denied.topic, "DENY wins over the prefixed ALLOW")
        #expect(try await bob.fetch("logs.private") == 0)
        #expect(try await alice.produce("logs.public") == Self.denied.topic, "READ does not allow WRITE")
        await alice.close()
        await bob.close()
        try await h.stop()
    }

    @Test func superUserNeedsNoAcl() async throws {
        let h = try await Self.harness()
        let admin = try await SaslClient(h, user: "admin", password: "admin-pw")
        #expect(try await admin.createTopic("admin-made") == 0)
        #expect(try await admin.produce("admin-made") == 0)
        #expect(try await admin.fetch("admin-made") == 0)
        #expect(try await admin.createAcl("admin-made") == 0)
        #expect(try await admin.initProducerId(transactionalId: "tx") == 0)
        await admin.close()
        try await h.stop()
    }

    @Test func transactionalAndIdempotentProducers() async throws {
        let h = try await Self.harness()
        _ = try await h.broker.createTopic("orders", partitions: 1)
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        #expect(try await alice.initProducerId(transactionalId: nil) == Self.denied.cluster, "idempotence: IDEMPOTENT_WRITE or WRITE on some topic")
        #expect(try await alice.initProducerId(transactionalId: "tx") == Self.denied.txn)
        #expect(try await alice.findCoordinator("tx", type: 1) == Self.denied.txn)
        try await h.broker.createAcls([Self.allow("User:alice", .write, .topic, "orders")])
        #expect(try await alice.initProducerId(transactionalId: nil) == 0)
        #expect(try await alice.produce("orders", transactionalId: "tx") == Self.denied.txn, "transactional records need WRITE on the id")
        await alice.close()
        try await h.stop()
    }

    @Test func allowEveryoneIfNoAclFound() async throws {
        let h = try await Self.harness(allowEveryone: true)
        for t in ["free", "owned"] { _ = try await h.broker.createTopic(t, partitions: 1) }
        try await h.broker.createAcls([Self.allow("User:bob", .write, .topic, "owned")])
        let alice = try await SaslClient(h, user: "alice", password: "alice-pw")
        #expect(try await alice.produce("free") == 0, "no ACL on the topic: open")
        #expect(try await alice.produce("owned") == Self.denied.topic, "an ACL covers it: closed to others")
        await alice.close()
        try await h.stop()
    }

    @Test func authorizerOffAllowsEverything() async throws {
        let h = try await KafkaHarness()
        _ = try await h.broker.createTopic("orders", partitions: 1)
        try await h.broker.createAcls([AclBinding(resourceType: .topic, resourceName: "orders", principal: "User:ANONYMOUS", operation: .all, permission: .deny)])
        var builder = RecordBatchBuilder()
        builder.append(key: nil, value: Array("v".utf8), timestamp: 1_700_000_000_000)
        try await h.send(.produce, version: 8, correlationId: 1, ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [
            .init(name: "orders", partitionData: [.init(index: 0, records: .buffer(try builder.build()))]),
        ]))
        var (_, body) = try await h.receive(flexibleHeader: false)
        #expect(try ProduceResponse(from: &body, version: 8).responses.first?.partitionResponses.first?.errorCode == 0, "ACLs are stored, not checked")
        try await h.stop()
    }
}

import Foundation
import NIOCore
import SpoolSecurity
import Testing

@testable import SpoolKafka

/// The SASL state machine of a SASL_PLAINTEXT listener, over a real socket.
@Suite(.serialized) struct KafkaSaslTests {
    static func store() throws -> CredentialStore {
        let directory = NSTemporaryDirectory() + "spool-sasl-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try CredentialStore(directory: directory)
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha512))
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha256))
        return store
    }

    static func harness(_ store: CredentialStore, reauthMillis: Int64? = nil) async throws -> KafkaHarness {
        try await KafkaHarness(kafka: {
            $0.securityProtocol = .saslPlaintext
            $0.credentials = store
            $0.reauthMillis = reauthMillis
        })
    }

    func authenticate(_ h: KafkaHarness, _ token: [UInt8], id: Int32, version: Int16 = 2) async throws -> SaslAuthenticateResponse {
        try await h.send(.saslAuthenticate, version: version, correlationId: id, SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: token)))
        var (got, body) = try await h.receive(flexibleHeader: version >= 2)
        #expect(got == id)
        return try SaslAuthenticateResponse(from: &body, version: version)
    }

    func closed(_ h: KafkaHarness) async -> Bool {
        (try? await h.receive(flexibleHeader: false)) == nil
    }

    @Test func requestBeforeAuthenticationIsIllegalAndCloses() async throws {
        let h = try await Self.harness(try Self.store())
        // ApiVersions is allowed and advertises SaslHandshake from v0.
        try await h.send(.apiVersions, version: 3, correlationId: 1, ApiVersionsRequest(clientSoftwareName: "t", clientSoftwareVersion: "1"))
        var (_, body) = try await h.receive(flexibleHeader: false)
        let versions = try ApiVersionsResponse(from: &body, version: 3)
        #expect(versions.apiKeys.contains { $0.apiKey == KafkaApiKey.saslHandshake.rawValue && $0.minVersion == 0 && $0.maxVersion == 1 })
        #expect(versions.apiKeys.contains { $0.apiKey == KafkaApiKey.saslAuthenticate.rawValue && $0.maxVersion == 2 })
        try await h.send(.metadata, version: 9, correlationId: 2, MetadataRequest(topics: nil))
        let (id, answer) = try await h.receive(flexibleHeader: false)
        #expect(id == 2 && answer.getInteger(at: answer.readerIndex, as: Int16.self) == KafkaErrorCode.illegalSaslState.rawValue)
        #expect(await closed(h))
        try await h.stop()
    }

    @Test(arguments: [ScramMechanism.sha256, .sha512])
    func scramThenRequestsAreServed(mechanism: ScramMechanism) async throws {
        let h = try await Self.harness(try Self.store(), reauthMillis: 60_000)
        try await h.send(.saslHandshake, version: 1, correlationId: 1, SaslHandshakeRequest(mechanism: mechanism.name))
        var (_, body) = try await h.receive(flexibleHeader: false)
        let handshake = try SaslHandshakeResponse(from: &body, version: 1)
        #expect(handshake.errorCode == 0 && handshake.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
        var client = ScramClient(mechanism: mechanism, user: "alice", password: "alice-secret")
        let first = try await authenticate(h, client.clientFirst, id: 2)
        #expect(first.errorCode == 0)
        let final = try await authenticate(h, try client.receiveServerFirst(Array(first.authBytes.readableBytesView)), id: 3)
        #expect(final.errorCode == 0 && final.sessionLifetimeMs == 60_000)
        try client.verifyServerFinal(Array(final.authBytes.readableBytesView))
        try await h.send(.metadata, version: 9, correlationId: 4, MetadataRequest(topics: nil))
        let (id, _) = try await h.receive(flexibleHeader: true)
        #expect(id == 4, "served once authenticated")
        try await h.stop()
    }

    @Test func wrongPasswordIsRefusedWithAMessageAndCloses() async throws {
        let h = try await Self.harness(try Self.store())
        try await h.send(.saslHandshake, version: 1, correlationId: 1, SaslHandshakeRequest(mechanism: "SCRAM-SHA-512"))
        _ = try await h.receive(flexibleHeader: false)
        var client = ScramClient(mechanism: .sha512, user: "alice", password: "wrong")
        let first = try await authenticate(h, client.clientFirst, id: 2, version: 1)
        let final = try await authenticate(h, try client.receiveServerFirst(Array(first.authBytes.readableBytesView)), id: 3, version: 1)
        #expect(final.errorCode == KafkaErrorCode.saslAuthenticationFailed.rawValue)
        #expect(final.errorMessage?.contains("Authentication failed") == true)
        #expect(await closed(h))
        try await h.stop()
    }

    @Test func plainAndUnknownMechanism() async throws {
        let store = try Self.store()
        var h = try await Self.harness(store)
        try await h.send(.saslHandshake, version: 1, correlationId: 1, SaslHandshakeRequest(mechanism: "GSSAPI"))
        var (_, body) = try await h.receive(flexibleHeader: false)
        #expect(try SaslHandshakeResponse(from: &body, version: 1).errorCode == KafkaErrorCode.unsupportedSaslMechanism.rawValue)
        #expect(await closed(h))
        try await h.stop()

        h = try await Self.harness(store)
        try await h.send(.saslHandshake, version: 1, correlationId: 1, SaslHandshakeRequest(mechanism: "PLAIN"))
        _ = try await h.receive(flexibleHeader: false)
        let ok = try await authenticate(h, Array("\0alice\0alice-secret".utf8), id: 2, version: 0)
        #expect(ok.errorCode == 0)
        // SaslAuthenticate again without a handshake: out of order.
        try await h.send(.saslAuthenticate, version: 0, correlationId: 3, SaslAuthenticateRequest(authBytes: ByteBuffer()))
        let (id, answer) = try await h.receive(flexibleHeader: false)
        #expect(id == 3 && answer.getInteger(at: answer.readerIndex, as: Int16.self) == KafkaErrorCode.illegalSaslState.rawValue)
        try await h.stop()
    }

    /// SaslHandshake v0: raw length-prefixed tokens follow, no Kafka header.
    @Test func handshakeV0RawTokens() async throws {
        let h = try await Self.harness(try Self.store())
        try await h.send(.saslHandshake, version: 0, correlationId: 1, SaslHandshakeRequest(mechanism: "SCRAM-SHA-256"))
        _ = try await h.receive(flexibleHeader: false)
        var client = ScramClient(mechanism: .sha256, user: "alice", password: "alice-secret")
        func raw(_ token: [UInt8]) async throws -> [UInt8] {
            var buffer = ByteBuffer()
            buffer.writeInteger(Int32(token.count))
            buffer.writeBytes(token)
            try await h.client.writeAndFlush(buffer)
            guard let frame = await h.responses.next() else { throw SecurityError(.malformed, "closed") }
            return Array(frame.readableBytesView)
        }
        let serverFirst = try await raw(client.clientFirst)
        let serverFinal = try await raw(try client.receiveServerFirst(serverFirst))
        try client.verifyServerFinal(serverFinal)
        try await h.send(.metadata, version: 9, correlationId: 4, MetadataRequest(topics: nil))
        let (id, _) = try await h.receive(flexibleHeader: true)
        #expect(id == 4)
        try await h.stop()
    }
}

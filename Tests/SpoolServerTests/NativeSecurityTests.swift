import Foundation
import NIOCore
import SpoolBroker
import SpoolClient
import SpoolNative
import SpoolProtocol
import SpoolSecurity
import SpoolServer
import SpoolTestSupport
import Testing

/// Test certificates from tools/gen-certs.sh (a CA, a broker certificate for 127.0.0.1 and
/// localhost, a client certificate CN=client), made once per test process.
enum TestCertificates {
    static let directory: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let directory = NSTemporaryDirectory() + "spool-certs-" + UUID().uuidString
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["\(root)/tools/gen-certs.sh", directory]
        process.standardOutput = FileHandle.nullDevice
        try! process.run()
        process.waitUntilExit()
        precondition(process.terminationStatus == 0, "tools/gen-certs.sh failed")
        return directory
    }()
    static var ca: String { "\(directory)/ca.pem" }
    static var broker: TLSSettings { TLSSettings(certificatePath: "\(directory)/broker.pem", keyPath: "\(directory)/broker.key") }
    static var clientCertificate: String { "\(directory)/client.pem" }
    static var clientKey: String { "\(directory)/client.key" }
}

/// A broker whose native listener runs TLS and/or SCRAM authentication, on 127.0.0.1:0.
final class SecureBroker: @unchecked Sendable {
    let directory = NSTemporaryDirectory() + "spool-secure-" + UUID().uuidString
    let server: SpoolServer
    let store: CredentialStore

    init(tls: TLSSettings? = TestCertificates.broker, authentication: NativeSecurityConfig.Authentication = .none,
         configure: (inout BrokerConfig) -> Void = { _ in }) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try CredentialStore(directory: directory)
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha512))
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha256))
        try store.upsert(user: "bob", try .derive(password: "bob-secret", mechanism: .sha256))
        var config = BrokerConfig(dataDirectory: directory)
        config.port = 0
        config.threads = 2
        configure(&config)
        server = try await SpoolServer.start(
            config: config, native: NativeSecurityConfig(tls: tls, authentication: authentication, credentials: store))
    }

    func config(tls: Bool = true, user: String? = nil, password: String = "alice-secret", mechanism: String = "SCRAM-SHA-512",
                clientCertificate: Bool = false) -> ConnectionConfig {
        var config = ConnectionConfig(host: "127.0.0.1", port: server.port)
        config.connectTimeoutMillis = 3_000
        config.handshakeTimeoutMillis = 3_000
        if tls {
            config.tls = ClientTLSConfig(
                caPath: TestCertificates.ca,
                certificatePath: clientCertificate ? TestCertificates.clientCertificate : nil,
                keyPath: clientCertificate ? TestCertificates.clientKey : nil)
        }
        if let user { config.sasl = ClientSaslConfig(user: user, password: password, mechanism: mechanism) }
        return config
    }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The native listener's TLS and authentication (README "Security", FRAMING.md
/// "Authentication") through SpoolClient, against a real broker.
@Suite(.serialized) struct NativeSecurityTests {
    /// Produces `count` records of ~`valueBytes` each and reads them all back.
    func roundTrip(_ connection: SpoolConnection, topic: String, count: Int, valueBytes: Int) async throws {
        try await SpoolAdmin(connection).createTopic(topic, partitions: 2)
        var config = ProducerConfig()
        config.compression = .none
        // Batches well under the smallest answer a TLS test allows (256 KiB).
        config.batchBytes = 32 << 10
        let producer = SpoolProducer(connection: connection, config: config)
        let values = (0..<count).map { i in Array("\(i)-".utf8) + Array(repeating: UInt8(truncatingIfNeeded: i), count: valueBytes) }
        for (i, value) in values.enumerated() {
            try await producer.send(topic: topic, key: Array("k\(i % 7)".utf8), value: value) { _ in }
        }
        try await producer.flush()
        let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 50)
        try await consumer.assign(topic: topic, from: .beginning)
        var got: [[UInt8]] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while got.count < count && ContinuousClock.now < deadline {
            got += try await consumer.poll().map { Array($0.value!.readableBytesView) }
        }
        #expect(got.count == count)
        #expect(Set(got) == Set(values), "every record read back intact")
    }

    @Test func tlsRoundTripCopiesSpansWithinTheOutboundBudget() async throws {
        // A small outbound budget: each fetch answer (copied, not sendfile'd) is cut to it, so
        // the 3 MB produced take many fetches through the copy path.
        let broker = try await SecureBroker { $0.budgets.outboundBytesPerConnectionMax = 256 << 10 }
        let connection = try await SpoolConnection.connect(broker.config())
        try await roundTrip(connection, topic: "tls", count: 300, valueBytes: 10_000)
        #expect(connection.principal == nil)
        await connection.close()
        await broker.stop()
    }

    @Test func subscribeOverTLSStreamsCopiedEvents() async throws {
        let broker = try await SecureBroker { $0.budgets.outboundBytesPerConnectionMax = 256 << 10 }
        let connection = try await SpoolConnection.connect(broker.config())
        try await SpoolAdmin(connection).createTopic("push", configs: ["compression.type": "none"])
        var config = ProducerConfig()
        config.batchBytes = 1024
        config.compression = .none
        let producer = SpoolProducer(connection: connection, config: config)
        for i in 0..<300 { _ = try await producer.send(topic: "push", value: Array("\(i)-\(String(repeating: "x", count: 100))".utf8)) }
        var request = Spool_V1_SubscribeRequest()
        request.topic = "push"
        request.initialCreditBytes = 1 << 20
        // Asked for more than the TLS answer bound: each event is cut to it.
        request.maxBytesPerEvent = 1 << 20
        let (id, events) = try connection.openStream(.subscribe, request)
        var offsets: [Int64] = []
        for try await event in events {
            #expect(event.payload.readableBytes <= 256 << 10)
            offsets += try decodeOffsets(event.payload)
            if offsets.count >= 300 { break }
        }
        connection.cancel(id)
        #expect(offsets == Array(0..<300))
        await connection.close()
        await broker.stop()
    }

    @Test(arguments: ["SCRAM-SHA-512", "SCRAM-SHA-256"])
    func tlsAndScramRoundTrip(mechanism: String) async throws {
        let broker = try await SecureBroker(authentication: .required)
        let connection = try await SpoolConnection.connect(broker.config(user: "alice", mechanism: mechanism))
        #expect(connection.principal == "User:alice")
        try await roundTrip(connection, topic: "scram", count: 50, valueBytes: 100)
        await connection.close()
        await broker.stop()
    }

    @Test func scramOnAPlaintextListener() async throws {
        let broker = try await SecureBroker(tls: nil, authentication: .required)
        let connection = try await SpoolConnection.connect(broker.config(tls: false, user: "bob", password: "bob-secret", mechanism: "SCRAM-SHA-256"))
        #expect(connection.principal == "User:bob")
        try await roundTrip(connection, topic: "plain-scram", count: 20, valueBytes: 10)
        await connection.close()
        await broker.stop()
    }

    @Test func mutualTLSCertificateIsThePrincipal() async throws {
        var tls = TestCertificates.broker
        tls.clientCAPath = TestCertificates.ca
        tls.clientAuth = .requested
        // The authorizer on, only the certificate's principal allowed: the hook sees User:CN=client.
        let broker = try await SecureBroker(tls: tls, authentication: .optional) {
            $0.authorization.enabled = true
            $0.authorization.superUsers = ["User:CN=client"]
        }
        let withCertificate = try await SpoolConnection.connect(broker.config(clientCertificate: true))
        try await roundTrip(withCertificate, topic: "mtls", count: 10, valueBytes: 10)
        // FindCoordinator needs DESCRIBE on the group, as Kafka's: a single broker names itself.
        #expect(try await SpoolAdmin(withCertificate).findCoordinator(group: "g").node == 0)
        await withCertificate.close()
        // Without a certificate the connection is User:ANONYMOUS, which no ACL allows.
        let anonymous = try await SpoolConnection.connect(broker.config())
        await #expect(throws: SpoolStatusError.self) { try await SpoolAdmin(anonymous).createTopic("denied") }
        do {
            try await SpoolAdmin(anonymous).createTopic("denied")
        } catch let error as SpoolStatusError {
            #expect(error.code == .permissionDenied && error.message.contains("User:ANONYMOUS"), "\(error)")
        }
        do {
            _ = try await SpoolAdmin(anonymous).findCoordinator(group: "g")
            Issue.record("FindCoordinator of group g allowed for User:ANONYMOUS")
        } catch let error as SpoolStatusError {
            #expect(error.code == .permissionDenied && error.message.hasSuffix(" g"), "\(error)")
        }
        await anonymous.close()
        await broker.stop()
    }

    @Test func requiredAuthenticationAcceptsAClientCertificate() async throws {
        var tls = TestCertificates.broker
        tls.clientCAPath = TestCertificates.ca
        tls.clientAuth = .required
        let broker = try await SecureBroker(tls: tls, authentication: .required)
        let connection = try await SpoolConnection.connect(broker.config(clientCertificate: true))
        try await SpoolAdmin(connection).createTopic("cert-only")
        await connection.close()
        // A client without a certificate fails the TLS handshake itself.
        await #expect(throws: SpoolClientError.self) { _ = try await SpoolConnection.connect(broker.config()) }
        await broker.stop()
    }

    @Test func wrongPasswordIsRefusedAndOthersAreServed() async throws {
        let broker = try await SecureBroker(authentication: .required)
        for (user, password) in [("alice", "wrong"), ("mallory", "whatever")] {
            do {
                _ = try await SpoolConnection.connect(broker.config(user: user, password: password))
                Issue.record("\(user) authenticated with a wrong password")
            } catch let error as SpoolClientError {
                #expect(error.code == .authenticationFailed, "\(error)")
                #expect(error.message.contains("Authentication failed") && error.message.contains(user), "\(error)")
            }
        }
        let good = try await SpoolConnection.connect(broker.config(user: "alice"))
        try await SpoolAdmin(good).createTopic("after-failures")
        #expect(try await SpoolAdmin(good).listTopics().contains { $0.name == "after-failures" })
        await good.close()
        await broker.stop()
    }

    @Test func aCallBeforeAuthenticationIsRefusedAndCloses() async throws {
        let broker = try await SecureBroker(authentication: .required)
        let connection = try await SpoolConnection.connect(broker.config())
        do {
            _ = try await SpoolAdmin(connection).listTopics()
            Issue.record("ListTopics ran before authentication")
        } catch let error as SpoolStatusError {
            #expect(error.code == .unauthenticated && error.message.contains("requires authentication"), "\(error)")
        }
        // The broker closed the connection after the refusal.
        let deadline = ContinuousClock.now + .seconds(5)
        while connection.isConnected && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!connection.isConnected)
        await connection.close()
        await broker.stop()
    }

    @Test func malformedAuthenticateTokensAreRefusedAndTheBrokerServesOn() async throws {
        var rng = SeededRandom(test: "malformedAuthenticateTokensAreRefusedAndTheBrokerServesOn")
        let broker = try await SecureBroker(tls: nil, authentication: .required)
        for round in 0..<40 {
            let connection = try await SpoolConnection.connect(broker.config(tls: false))
            // A random first token, or a valid client-first followed by a random final one.
            var request = Spool_V1_AuthenticateRequest()
            request.mechanism = Bool.random(using: &rng) ? "SCRAM-SHA-512" : "SCRAM-SHA-256"
            let random = Data((0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if round % 2 == 0 {
                request.token = random
            } else {
                request.token = Data("n,,n=alice,r=abcdef".utf8)
                let _: Spool_V1_AuthenticateResponse = try await connection.call(.authenticate, request)
                request.token = random
            }
            do {
                let _: Spool_V1_AuthenticateResponse = try await connection.call(.authenticate, request)
                Issue.record("seed \(rng.seed) round \(round): a random token authenticated")
            } catch let error as SpoolStatusError {
                #expect(error.code == .unauthenticated, "seed \(rng.seed) round \(round): \(error)")
            }
            await connection.close()
        }
        let good = try await SpoolConnection.connect(broker.config(tls: false, user: "alice"))
        #expect(good.principal == "User:alice")
        await good.close()
        await broker.stop()
    }

    @Test func authenticateIsRefusedWhenNotEnabled() async throws {
        let broker = try await SecureBroker(authentication: .none)
        do {
            _ = try await SpoolConnection.connect(broker.config(user: "alice"))
            Issue.record("authenticated on a listener without authentication")
        } catch let error as SpoolClientError {
            #expect(error.code == .authenticationFailed && error.message.contains("not enabled"), "\(error)")
        }
        await broker.stop()
    }

    @Test func plaintextClientOnTheTLSPortFailsClearly() async throws {
        let broker = try await SecureBroker()
        do {
            _ = try await SpoolConnection.connect(broker.config(tls: false))
            Issue.record("a plaintext client got through a TLS listener")
        } catch let error as SpoolClientError {
            #expect([.notASpoolBroker, .handshakeTimeout].contains(error.code), "\(error)")
            #expect(error.message.contains("TLS") || error.code == .handshakeTimeout, "\(error)")
        }
        // The broker is unharmed.
        let connection = try await SpoolConnection.connect(broker.config())
        _ = try await SpoolAdmin(connection).listTopics()
        await connection.close()
        await broker.stop()
    }

    @Test func tlsClientOnThePlaintextPortFailsClearly() async throws {
        let broker = try await SecureBroker(tls: nil)
        do {
            _ = try await SpoolConnection.connect(broker.config(tls: true))
            Issue.record("a TLS client got through a plaintext listener")
        } catch let error as SpoolClientError {
            #expect(error.code == .tlsFailed, "\(error)")
            #expect(error.message.contains("TLS"), "\(error)")
        }
        let connection = try await SpoolConnection.connect(broker.config(tls: false))
        _ = try await SpoolAdmin(connection).listTopics()
        await connection.close()
        await broker.stop()
    }

    @Test func untrustedCertificateFailsClearly() async throws {
        let broker = try await SecureBroker()
        var config = broker.config()
        // The broker's own certificate is no CA of itself.
        config.tls?.caPath = TestCertificates.clientCertificate
        do {
            _ = try await SpoolConnection.connect(config)
            Issue.record("an untrusted certificate was accepted")
        } catch let error as SpoolClientError {
            #expect(error.code == .tlsFailed, "\(error)")
        }
        await broker.stop()
    }
}

import Foundation
import Logging
import NIOSSL
import SpoolAdminHTTP
import SpoolBroker
import SpoolRecords
import SpoolSecurity
import SpoolTestSupport
import Testing

/// The admin listener with security on, over real sockets: the login (HTTP basic against
/// the SCRAM credentials, bearer tokens), the open paths, TLS, and the API answering what
/// the logged-in user's ACLs allow.
@Suite struct AdminHTTPSecurityTests {
    /// Runs a listener on 127.0.0.1:0 serving `t`, hands `body` a client, stops it.
    func serving(_ t: TestBroker, tls: TLSSettings? = nil, auth: AdminHTTPAuth?, clientTLS: NIOSSLContext? = nil,
                 _ body: (RawHTTPClient) async throws -> Void) async throws {
        let listener = try AdminHTTPListener(api: t.api, exporter: t.exporter, host: "127.0.0.1", port: 0, tls: tls, auth: auth,
                                             logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            let client = RawHTTPClient(address: await listener.boundAddress(), tls: clientTLS)
            do {
                try await body(client)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    func auth(_ t: TestBroker, tokens: BearerTokens? = nil) throws -> AdminHTTPAuth {
        let store = try CredentialStore(directory: t.directory)
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha512))
        try store.upsert(user: "admin", try .derive(password: "admin-secret", mechanism: .sha256))
        return AdminHTTPAuth(verifier: PasswordVerifier(store: store), tokens: tokens, events: t.broker.events)
    }

    @Test func loginIsRequiredAndCheckedAgainstTheScramCredentials() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 1)
        let auth = try auth(t, tokens: try BearerTokens(lines: "# scrapers\nprometheus 0123456789abcdef-token\n"))
        try await serving(t, auth: auth) { (client: RawHTTPClient) async throws in
            let none = try await client.get("/v1/topics")
            #expect(none.status == 401)
            #expect(none.header("WWW-Authenticate") == #"Basic realm="spool""#)
            #expect(none.body.contains(#""code":"UNAUTHENTICATED""#))
            #expect(try await client.get("/v1/topics", user: "alice", password: "wrong").status == 401)
            #expect(try await client.get("/v1/topics", user: "mallory", password: "alice-secret").status == 401)
            #expect(try await client.get("/v1/topics", authorization: "Basic not-base64!").status == 401)
            let ok = try await client.get("/v1/topics", user: "alice", password: "alice-secret")
            #expect(ok.status == 200 && ok.body.contains(#""name":"orders""#))
            // The second request is answered from the verified-login cache.
            #expect(try await client.get("/v1/broker", user: "alice", password: "alice-secret").status == 200)
            #expect(auth.verifier.cachedLogins == 1)
            let session = try await client.get("/v1/session", user: "alice", password: "alice-secret")
            #expect(session.body.contains(#""principal":"User:alice""#) && session.body.contains(#""loginRequired":true"#))

            // The console too: 401 (the browser's login prompt), then the page.
            let page = try await client.get("/")
            #expect(page.status == 401 && page.header("WWW-Authenticate") != nil)
            #expect(try await client.get("/", user: "alice", password: "alice-secret").status == 200)
            #expect(try await client.get("/console/app.js").status == 401)

            // Open paths answer without a login.
            #expect(try await client.get("/health").status == 200)
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == 200)
            // Failures counted: wrong password, unknown user, malformed header (not the missing ones).
            #expect(metrics.body.contains(#"spool_authentications_total{result="failure",mechanism="BASIC"} 3"#))
            #expect(metrics.body.contains(#"spool_authentications_total{result="success",mechanism="BASIC"} 1"#))

            // Bearer tokens from the token file.
            let bearer = try await client.get("/v1/session", authorization: "Bearer 0123456789abcdef-token")
            #expect(bearer.status == 200 && bearer.body.contains(#""principal":"User:prometheus""#))
            #expect(try await client.get("/v1/session", authorization: "Bearer 0123456789abcdef-nope").status == 401)

            // A changed password invalidates the cached login at once.
            try auth.verifier.store.upsert(user: "alice", try .derive(password: "new-secret", mechanism: .sha512))
            #expect(try await client.get("/v1/topics", user: "alice", password: "alice-secret").status == 401)
            #expect(try await client.get("/v1/topics", user: "alice", password: "new-secret").status == 200)
        }
    }

    @Test func openPathsAreConfigurable() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        var auth = try auth(t)
        auth.openPaths = AdminHTTPAuth.parseOpenPaths("/health, /console/*")!
        try await serving(t, auth: auth) { (client: RawHTTPClient) async throws in
            #expect(try await client.get("/metrics").status == 401)
            #expect(try await client.get("/health").status == 200)
            #expect(try await client.get("/console/style.css").status == 200)
            #expect(try await client.get("/v1/topics").status == 401)
        }
        #expect(AdminHTTPAuth.parseOpenPaths("metrics") == nil)
        #expect(AdminHTTPAuth.parseOpenPaths("") == [])
    }

    @Test func tlsWithACertificateFromGenCerts() async throws {
        let directory = NSTemporaryDirectory() + "spool-http-tls-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = Executables.root.appendingPathComponent("tools/gen-certs.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, directory]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let t = try TestBroker()
        defer { Task { await t.close() } }
        let tls = TLSSettings(certificatePath: directory + "/broker.pem", keyPath: directory + "/broker.key")
        let trusting = try TLSSettings.makeClientContext(caPath: directory + "/ca.pem")
        try await serving(t, tls: tls, auth: try auth(t), clientTLS: trusting) { (client: RawHTTPClient) async throws in
            #expect(try await client.get("/health").status == 200)
            #expect(try await client.get("/v1/topics").status == 401)
            #expect(try await client.get("/v1/topics", user: "alice", password: "alice-secret").status == 200)
            // A plaintext client on the TLS port gets no HTTP answer; the listener stays up.
            let plain = RawHTTPClient(address: client.address)
            let answer = try? await plain.get("/health")
            #expect(answer == nil || answer?.status == 400)
            // A client that does not trust the CA fails the handshake.
            let untrusting = RawHTTPClient(address: client.address, tls: try TLSSettings.makeClientContext(caPath: nil))
            #expect((try? await untrusting.get("/health")) == nil)
            #expect(try await client.get("/health").status == 200)
        }
        // A key that is not the certificate's fails at start, not at the first client.
        let wrong = TLSSettings(certificatePath: directory + "/broker.pem", keyPath: directory + "/client.key")
        #expect(throws: SecurityError.self) {
            try AdminHTTPListener(exporter: nil, host: "127.0.0.1", port: 0, tls: wrong, logger: Logger(label: "test"))
        }
    }

    @Test func theApiAnswersWhatTheUsersAclsAllow() async throws {
        let t = try TestBroker {
            $0.authorization.enabled = true
            $0.authorization.superUsers = ["User:admin"]
        }
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 1)
        _ = try await t.broker.createTopic("payroll", partitions: 1)
        try await t.produce("orders", values: [Array("order-1".utf8)])
        try await t.produce("payroll", values: [Array("salary".utf8)])
        _ = try await t.broker.commitOffsets(group: "billing", [
            TopicPartition("orders", 0): (offset: 1, metadata: ""), TopicPartition("payroll", 0): (offset: 0, metadata: ""),
        ])
        _ = try await t.broker.commitOffsets(group: "hr", [TopicPartition("payroll", 0): (offset: 1, metadata: "")])
        try await t.broker.createAcls([
            AclBinding(resourceType: .topic, resourceName: "orders", principal: "User:alice", operation: .read, permission: .allow),
            AclBinding(resourceType: .group, resourceName: "billing", principal: "User:alice", operation: .read, permission: .allow),
            AclBinding(resourceType: .topic, resourceName: "pay", patternType: .prefixed, principal: "User:auditor",
                       operation: .describe, permission: .allow),
        ])
        let store = try CredentialStore(directory: t.directory)
        try store.upsert(user: "auditor", try .derive(password: "auditor-secret", mechanism: .sha512))
        try await serving(t, auth: try auth(t)) { (client: RawHTTPClient) async throws in
            // alice: READ on orders (which implies DESCRIBE), nothing on payroll.
            let topics = try await client.get("/v1/topics", user: "alice", password: "alice-secret")
            #expect(topics.status == 200 && topics.body.contains(#""name":"orders""#) && !topics.body.contains("payroll"))
            let info = try await client.get("/v1/broker", user: "alice", password: "alice-secret")
            #expect(info.body.contains(#""topics":1"#))
            let hidden = try await client.get("/v1/topics/payroll", user: "alice", password: "alice-secret")
            #expect(hidden.status == 403 && hidden.body.contains(#""code":"FORBIDDEN""#))
            // The same answer for a topic that does not exist: no existence leak.
            #expect(try await client.get("/v1/topics/nothing", user: "alice", password: "alice-secret").status == 403)
            let records = try await client.get("/v1/topics/orders/partitions/0/records", user: "alice", password: "alice-secret")
            #expect(records.status == 200 && records.body.contains("order-1"))
            let refused = try await client.get("/v1/topics/payroll/partitions/0/records", user: "alice", password: "alice-secret")
            #expect(refused.status == 403 && refused.body.contains("READ") && !refused.body.contains("salary"))

            // Groups: billing (READ implies DESCRIBE) with only the offsets of topics alice may see; hr hidden.
            let groups = try await client.get("/v1/groups", user: "alice", password: "alice-secret")
            #expect(groups.status == 200 && groups.body.contains(#""group":"billing""#) && !groups.body.contains(#""group":"hr""#))
            #expect(groups.body.contains(#""topic":"orders""#) && !groups.body.contains("payroll"))
            #expect(try await client.get("/v1/groups/hr", user: "alice", password: "alice-secret").status == 403)
            #expect(try await client.get("/v1/groups/billing", user: "alice", password: "alice-secret").status == 200)

            // auditor: DESCRIBE on pay* sees payroll but may not read it.
            let audit = try await client.get("/v1/topics/payroll", user: "auditor", password: "auditor-secret")
            #expect(audit.status == 200)
            #expect(try await client.get("/v1/topics/payroll/partitions/0/records", user: "auditor", password: "auditor-secret").status == 403)

            // A super user sees and reads everything.
            let all = try await client.get("/v1/topics", user: "admin", password: "admin-secret")
            #expect(all.body.contains("orders") && all.body.contains("payroll"))
            let salary = try await client.get("/v1/topics/payroll/partitions/0/records", user: "admin", password: "admin-secret")
            #expect(salary.status == 200 && salary.body.contains("salary"))

            // Denials are counted as the Kafka listener's are (hidden list entries are not).
            let metrics = try await client.get("/metrics")
            #expect(metrics.body.contains(#"spool_authorization_denials_total{operation="read",resource_type="topic"} 2"#))
        }
    }
}

import Foundation
import NIOCore
import SpoolKafka
import SpoolTestSupport
import Testing

/// Replication over TLS and SASL: three `spool broker --etcd` processes whose inter-broker
/// listener is SASL_SSL (followers log in to leaders with SCRAM-SHA-512 as a super user) — or
/// SSL with required client certificates (a follower's principal is its certificate's) — the
/// authorizer on with no one else allowed anything, the users created straight in etcd with
/// `spool user create --etcd` (no broker can be logged in to before one exists). acks=all with
/// min.insync.replicas=2 and a 3 s replica lag time succeeds only if followers replicate; the
/// ISR stays full past the lag time; every leader logged the followers' SCRAM logins on its
/// SASL_SSL listener; Metadata on the brokers' second (PLAINTEXT) listener lists the PLAINTEXT
/// addresses, not the first listener's.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct InterBrokerSecurityTests {
    static let clusterId = "isec"
    static let lagMillis = 3000

    /// How the brokers' first Kafka listener (the inter-broker one) is secured, and who the
    /// followers are to the leaders.
    struct Variant: Sendable {
        var listener: String
        var arguments: @Sendable (String, String) -> [String]
        /// The followers' principal (a super user).
        var principal: String
        /// A SASL login leaves "authentication succeeded" lines; mutual TLS none.
        var logsLogins: Bool
    }

    static let saslSsl = Variant(listener: "SASL_SSL", arguments: { certs, passwordFile in
        ["--kafka-ssl-certificate", "\(certs)/broker.pem", "--kafka-ssl-key", "\(certs)/broker.key", "--kafka-ssl-client-ca", "\(certs)/ca.pem",
         "--inter-broker-sasl-user", "broker", "--inter-broker-password-file", passwordFile]
    }, principal: "User:broker", logsLogins: true)

    /// Mutual TLS: the leaders require a client certificate; a follower presents its listener's
    /// own (CN=localhost), whose principal is a super user.
    static let mutualTls = Variant(listener: "SSL", arguments: { certs, _ in
        ["--kafka-ssl-certificate", "\(certs)/broker.pem", "--kafka-ssl-key", "\(certs)/broker.key", "--kafka-ssl-client-ca", "\(certs)/ca.pem",
         "--kafka-ssl-client-auth", "required"]
    }, principal: "User:CN=localhost", logsLogins: false)

    func startBroker(_ id: Int32, _ etcd: EtcdCluster, _ variant: Variant, certs: String, passwordFile: String, directory: String) async throws -> BrokerProcess {
        let endpoints = etcd.endpoints
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", Self.clusterId, "--cluster-lease-ttl-seconds", "3",
                "--replica-lag-time-max-ms", String(Self.lagMillis),
                "--kafka-listen", "\(variant.listener)://127.0.0.1:0", "--kafka-listen", "PLAINTEXT://127.0.0.1:0"]
                + variant.arguments(certs, passwordFile) + [
                "--ssl-certificate", "\(certs)/broker.pem", "--ssl-key", "\(certs)/broker.key", "--native-auth", "required",
                "--authorizer", "--super-users", "\(variant.principal);User:admin", "--no-http-auth"], directory: directory)
        }
    }

    func metadata(port: Int) throws -> MetadataResponse {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 5)
        let body = try connection.call(.metadata, version: 8, MetadataRequest(topics: nil, allowAutoTopicCreation: false))
        var reader = KafkaReader(body)
        return try MetadataResponse(from: &reader, version: 8)
    }

    /// Repeats `attempt` (off the cooperative pool) until it holds, at most `seconds`.
    func until(seconds: Double, _ attempt: @escaping @Sendable () throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? await offPool(attempt)) == true { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// `spool topic describe`'s partition rows: partition → (end offset, ISR).
    static func partitions(_ describe: String) -> [Int: (end: Int, isr: Set<Int>)] {
        var rows: [Int: (Int, Set<Int>)] = [:]
        for line in describe.split(separator: "\n") {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count >= 9, let p = Int(f[0]), let end = Int(f[2]) else { continue }
            rows[p] = (end, Set(f[8].split(separator: ",").compactMap { Int($0) }))
        }
        return rows
    }

    @Test func followersReplicateOverSaslSslAsASuperUser() async throws {
        try await replicate(Self.saslSsl)
    }

    @Test func followersReplicateOverMutualTlsAsTheirCertificatesPrincipal() async throws {
        try await replicate(Self.mutualTls)
    }

    func replicate(_ variant: Variant) async throws {
        let root = NSTemporaryDirectory() + "spool-isec-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let certs = try NativeSecurityCLITests.certificates(in: root)
        let passwordFile = root + "/broker.password"
        try "broker-pw\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try await withEtcdCluster(members: 1) { etcd in
            // The users first, straight in etcd: every listener of the cluster needs a login.
            let inEtcd = ["--etcd", etcd.endpoints, "--cluster-id", Self.clusterId]
            for (user, password) in [("broker", "broker-pw"), ("admin", "admin-pw")] {
                let r = try await offPool { try runCommand("spool", ["user", "create", user, "--password-stdin"] + inEtcd, stdin: password + "\n") }
                #expect(r.status == 0, "user create \(user) --etcd: \(r.stderr)")
            }
            let listed = try await offPool { try runCommand("spool", ["user", "list"] + inEtcd) }
            #expect(listed.status == 0 && listed.stdout.contains("broker\tSCRAM-SHA-256(4096),SCRAM-SHA-512(4096)") && listed.stdout.contains("admin\t"),
                    "user list --etcd: \(listed.stdout) \(listed.stderr)")

            var brokers: [Int32: BrokerProcess] = [:]
            defer { for b in brokers.values { _ = b.terminate() } }
            for id in Int32(1)...3 {
                brokers[id] = try await startBroker(id, etcd, variant, certs: certs, passwordFile: passwordFile, directory: root + "/broker-\(id)")
            }
            var plaintext: [Int32: Int] = [:], secured: [Int32: Int] = [:]
            for (id, b) in brokers {
                plaintext[id] = try await offPool { try b.kafkaPort() }
                secured[id] = try await offPool { try b.kafkaPort(protocol: variant.listener) }
            }
            let plainPorts = plaintext
            // Metadata answers per listener: on PLAINTEXT, every broker's PLAINTEXT address.
            let joined = try await until(seconds: 20) { try self.metadata(port: plainPorts[1]!).brokers.count == 3 }
            #expect(joined, "the three brokers never registered")
            let m = try await offPool { try self.metadata(port: plainPorts[2]!) }
            for b in m.brokers {
                #expect(Int(b.port) == plaintext[b.nodeId], "broker \(b.nodeId) advertised \(b.port) on PLAINTEXT; its PLAINTEXT port is \(plaintext[b.nodeId] ?? -1), \(variant.listener) \(secured[b.nodeId] ?? -1)")
            }

            let b1 = brokers[1]!
            let login = ["--tls-ca", "\(certs)/ca.pem", "--sasl-user", "admin", "--password-stdin"]
            var r = try await offPool {
                try b1.spool(["topic", "create", "secure", "--partitions", "3", "--replication-factor", "3",
                              "--config", "min.insync.replicas=2"] + login, stdin: "admin-pw\n")
            }
            #expect(r.status == 0, "topic create: \(r.stderr)")
            let records = 300
            let lines = (0..<records).map { "record-\($0)" }.joined(separator: "\n")
            r = try await offPool { try b1.spool(["produce", "secure", "--acks", "all"] + login, stdin: "admin-pw\n" + lines + "\n") }
            #expect(r.status == 0, "acks=all with min ISR 2 needs the followers: \(r.stdout) \(r.stderr)")

            // Past the lag time the ISR is still full, and every replica's log end is the leader's.
            try await Task.sleep(for: .milliseconds(Self.lagMillis + 1500))
            var rows: [Int: (end: Int, isr: Set<Int>)] = [:]
            var settled = false
            let deadline = Date().addingTimeInterval(15)
            while !settled && Date() < deadline {
                let d = try await offPool { try b1.spool(["topic", "describe", "secure"] + login, stdin: "admin-pw\n") }
                rows = Self.partitions(d.stdout)
                settled = d.status == 0 && rows.count == 3 && rows.values.allSatisfy { $0.isr == [1, 2, 3] }
                if !settled { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(settled, "the ISR did not stay full past the lag time: \(rows)")
            #expect(rows.values.map(\.end).reduce(0, +) == records, "end offsets \(rows)")

            // Each leader logged its followers' SCRAM-SHA-512 logins as User:broker.
            for (id, b) in brokers {
                #expect(!b.logText.contains("fetch from broker"), "broker \(id) logged a refused fetch: \(b.logText.suffix(2000))")
                guard variant.logsLogins else { continue }
                let logins = b.logText.split(separator: "\n").filter { $0.contains("authentication succeeded") && $0.contains("User:broker") }
                #expect(!logins.isEmpty, "broker \(id) logged no inter-broker login: \(b.logText.suffix(2000))")
                #expect(logins.allSatisfy { $0.contains("SCRAM-SHA-512") }, "\(logins)")
            }
        }
    }

    /// A follower whose inter-broker password is wrong says so, as a warning naming the leader
    /// and the refused login, and leaves the ISR; the one with the right password keeps up.
    @Test func aFollowerWithAWrongPasswordSaysWhy() async throws {
        let root = NSTemporaryDirectory() + "spool-isec-wrong-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let certs = try NativeSecurityCLITests.certificates(in: root)
        try "broker-pw\n".write(toFile: root + "/right.password", atomically: true, encoding: .utf8)
        try "not-the-password\n".write(toFile: root + "/wrong.password", atomically: true, encoding: .utf8)
        try await withEtcdCluster(members: 1) { etcd in
            let inEtcd = ["--etcd", etcd.endpoints, "--cluster-id", Self.clusterId]
            for (user, password) in [("broker", "broker-pw"), ("admin", "admin-pw")] {
                let r = try await offPool { try runCommand("spool", ["user", "create", user, "--password-stdin"] + inEtcd, stdin: password + "\n") }
                #expect(r.status == 0, "user create \(user) --etcd: \(r.stderr)")
            }
            let b1 = try await startBroker(1, etcd, Self.saslSsl, certs: certs, passwordFile: root + "/right.password", directory: root + "/broker-1")
            defer { _ = b1.terminate() }
            let b2 = try await startBroker(2, etcd, Self.saslSsl, certs: certs, passwordFile: root + "/wrong.password", directory: root + "/broker-2")
            defer { _ = b2.terminate() }
            let login = ["--tls-ca", "\(certs)/ca.pem", "--sasl-user", "admin", "--password-stdin"]
            let registered = try await until(seconds: 20) {
                try runCommand("spool", ["cluster", "status"] + inEtcd).stdout.contains("127.0.0.1") &&
                    (try self.metadata(port: try b1.kafkaPort())).brokers.count == 2
            }
            #expect(registered, "the two brokers never registered")
            let r = try await offPool {
                try b1.spool(["topic", "create", "wrong", "--partitions", "2", "--replication-factor", "2"] + login, stdin: "admin-pw\n")
            }
            #expect(r.status == 0, "topic create: \(r.stderr)")
            let warned = try await until(seconds: 15) {
                b2.logText.split(separator: "\n").contains { $0.contains("fetch from broker 1 failed") && $0.contains("refused") && $0.contains("broker") }
            }
            #expect(warned, "broker 2 never said why it cannot fetch: \(b2.logText.suffix(3000))")
            #expect(b1.logText.contains("authentication failed"), "broker 1 did not log the refused login: \(b1.logText.suffix(2000))")
            #expect(!b1.logText.contains("fetch from broker 2 failed"), "broker 1, with the right password, was refused: \(b1.logText.suffix(2000))")
        }
    }

    /// Wrong settings are refused at start, in words, before any listener opens.
    @Test func inconsistentInterBrokerSettingsAreRefusedAtStart() throws {
        let cases: [([String], String)] = [
            (["--kafka-listen", "SASL_SSL://127.0.0.1:0", "--kafka-ssl-certificate", "/nonexistent.pem", "--kafka-ssl-key", "/nonexistent.key",
              "--inter-broker-security-protocol", "SASL_PLAINTEXT"], "needs a SASL_PLAINTEXT:// Kafka listener"),
            (["--kafka-listen", "SASL_PLAINTEXT://127.0.0.1:0"], "needs inter.broker.sasl.user and inter.broker.sasl.password.file"),
            (["--kafka-listen", "127.0.0.1:0", "--inter-broker-sasl-user", "broker"], "needs security.inter.broker.protocol SASL_PLAINTEXT or SASL_SSL"),
            (["--kafka-listen", "SASL_PLAINTEXT://127.0.0.1:0", "--inter-broker-sasl-user", "broker",
              "--inter-broker-password-file", "/nonexistent-password"], "cannot read inter.broker.sasl.password.file"),
            (["--kafka-listen", "SASL_PLAINTEXT://127.0.0.1:0", "--inter-broker-sasl-mechanism", "GSSAPI"], "sasl.mechanism.inter.broker.protocol must be one of"),
        ]
        for (arguments, message) in cases {
            let directory = NSTemporaryDirectory() + "spool-isec-bad-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let r = try runCommand("spool", ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", "1",
                                             "--http-listen", "127.0.0.1:0", "--etcd", "http://127.0.0.1:9", "--cluster-id", "bad"] + arguments, timeoutSeconds: 20)
            #expect(r.status != 0 && r.stderr.contains(message), "\(arguments): exit \(r.status), \(r.stderr)")
        }
        let alone = try runCommand("spool", ["broker", "--data-dir", NSTemporaryDirectory() + "spool-isec-alone-" + UUID().uuidString,
                                             "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                                             "--inter-broker-security-protocol", "SSL"], timeoutSeconds: 20)
        #expect(alone.status != 0 && alone.stderr.contains("is for cluster mode"), "single broker: \(alone.stderr)")
    }
}

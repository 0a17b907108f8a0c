import Foundation
import NIOCore
import SpoolKafka
import SpoolSecurity
import SpoolTestSupport
import Testing

/// Three `spool broker --etcd` processes and a real etcd, the authorizer on: a SCRAM user created
/// through broker 1 (Kafka AlterUserScramCredentials) logs in on broker 3's native listener, and
/// an ACL added through broker 2 (`spool acl add`) is enforced by broker 1 — both from the
/// cluster's metadata, no file copied between brokers; a client quota set through broker 2 is
/// listed by broker 3.
// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct ClusterSecurityTests {
    /// How long a change may take to reach another broker before the test gives up.
    static let propagationSecondsMax = 10.0

    func startBroker(_ id: Int32, _ etcd: EtcdCluster, certs: String, directory: String) async throws -> BrokerProcess {
        let endpoints = etcd.endpoints
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", "csec", "--cluster-lease-ttl-seconds", "3",
                "--ssl-certificate", "\(certs)/broker.pem", "--ssl-key", "\(certs)/broker.key", "--native-auth", "optional",
                "--authorizer", "--allow-everyone-if-no-acl-found", "true", "--no-http-auth"], directory: directory)
        }
    }

    func metadata(port: Int, topics: [String]? = nil) throws -> MetadataResponse {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 5)
        let body = try connection.call(.metadata, version: 8, MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: false))
        var reader = KafkaReader(body)
        return try MetadataResponse(from: &reader, version: 8)
    }

    /// AlterUserScramCredentials v0: `user` with SCRAM-SHA-512 (what kafka-configs.sh sends: salt and salted password).
    func createUser(port: Int, _ user: String, password: String) throws -> AlterUserScramCredentialsResponse.Result {
        let salt = Array("a-salt-for-\(user)".utf8)
        let salted = ScramMechanism.sha512.saltedPassword(Array(password.utf8), salt: salt, iterations: 4096)
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: 10)
        let body = try connection.call(.alterUserScramCredentials, version: 0, AlterUserScramCredentialsRequest(upsertions: [
            .init(name: user, mechanism: ScramMechanism.sha512.kafkaType, iterations: 4096,
                  salt: ByteBuffer(bytes: salt), saltedPassword: ByteBuffer(bytes: salted))]))
        var reader = KafkaReader(body)
        return try AlterUserScramCredentialsResponse(from: &reader, version: 0).results[0]
    }

    /// Repeats `attempt` (off the cooperative pool) until it holds, at most `seconds`; the seconds it took, or nil.
    func until(seconds: Double, _ attempt: @escaping @Sendable () throws -> Bool) async throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if (try? await offPool(attempt)) == true { return Date().timeIntervalSince(start) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    @Test func credentialsAndAclsReachEveryBroker() async throws {
        let root = NSTemporaryDirectory() + "spool-csec-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let certs = try NativeSecurityCLITests.certificates(in: root)
        try await withEtcdCluster(members: 1) { etcd in
            var brokers: [Int32: BrokerProcess] = [:]
            defer { for b in brokers.values { _ = b.terminate() } }
            for id in Int32(1)...3 {
                brokers[id] = try await startBroker(id, etcd, certs: certs, directory: root + "/broker-\(id)")
            }
            let (b1, b2, b3) = (brokers[1]!, brokers[2]!, brokers[3]!)
            let k1 = try await offPool { try b1.kafkaPort() }
            let k2 = try await offPool { try b2.kafkaPort() }
            let joined = try await until(seconds: 20) { try self.metadata(port: k1).brokers.count == 3 }
            #expect(joined != nil, "the three brokers never registered")

            // Credentials: unknown on broker 3, created through broker 1, then alice logs in on broker 3.
            let login = ["topic", "list", "--tls-ca", "\(certs)/ca.pem", "--sasl-user", "alice", "--password-stdin"]
            var r = try await offPool { try b3.spool(login, stdin: "alice-pw\n") }
            #expect(r.status != 0 && r.stderr.contains("Authentication failed"), "before the user exists: \(r.status) \(r.stderr)")
            let created: AlterUserScramCredentialsResponse.Result
            do {
                created = try await offPool { try self.createUser(port: k1, "alice", password: "alice-pw") }
            } catch {
                Issue.record("AlterUserScramCredentials through broker 1: \(error); broker 1's log: \(b1.logText.suffix(3000))")
                return
            }
            #expect(created.errorCode == 0, "AlterUserScramCredentials: \(created.errorMessage ?? "")")
            let loggedIn = try await until(seconds: Self.propagationSecondsMax) { try b3.spool(login, stdin: "alice-pw\n").status == 0 }
            print("a user created through broker 1 logged in on broker 3 after \(loggedIn.map { String(format: "%.2f", $0) } ?? "never") s")
            #expect(loggedIn != nil, "alice never logged in on broker 3")
            r = try await offPool { try b3.spool(login, stdin: "wrong\n") }
            #expect(r.status != 0 && r.stderr.contains("Authentication failed"), "a wrong password: \(r.stderr)")
            // Broker 2 keeps no credential file: the user lives in the cluster's metadata.
            #expect(!FileManager.default.fileExists(atPath: root + "/broker-2/credentials.json"))
            #expect(!FileManager.default.fileExists(atPath: root + "/broker-1/credentials.json"))

            // ACLs: a topic anyone may describe, then a DENY added through broker 2 hides it on broker 1.
            r = try await offPool { try b1.spool(["topic", "create", "secret", "--replication-factor", "3", "--tls-ca", "\(certs)/ca.pem"]) }
            #expect(r.status == 0, "\(r.stderr)")
            let visible = try await until(seconds: Self.propagationSecondsMax) {
                try self.metadata(port: k1, topics: ["secret"]).topics.first?.errorCode == 0
            }
            #expect(visible != nil, "the topic was not described on broker 1 before the ACL")
            r = try await offPool {
                try runCommand("spool", ["acl", "add", "--kafka", "127.0.0.1:\(k2)", "--deny-principal", "User:ANONYMOUS",
                                         "--operation", "Describe", "--topic", "secret"])
            }
            #expect(r.status == 0, "acl add through broker 2: \(r.stdout) \(r.stderr)")
            let denied = try await until(seconds: Self.propagationSecondsMax) {
                try self.metadata(port: k1, topics: ["secret"]).topics.first?.errorCode == 29
            }
            print("an ACL added through broker 2 was enforced on broker 1 after \(denied.map { String(format: "%.2f", $0) } ?? "never") s")
            #expect(denied != nil, "broker 1 never enforced the ACL added through broker 2")
            r = try await offPool { try runCommand("spool", ["acl", "list", "--kafka", "127.0.0.1:\(k1)", "--topic", "secret"]) }
            #expect(r.status == 0 && r.stdout.contains("User:ANONYMOUS"), "acl list on broker 1: \(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: root + "/broker-2/acls.meta"))

            // Removed through broker 3: broker 1 describes the topic again.
            r = try await offPool {
                try runCommand("spool", ["acl", "remove", "--kafka", "127.0.0.1:\(try b3.kafkaPort())", "--deny-principal", "User:ANONYMOUS",
                                         "--operation", "Describe", "--topic", "secret"])
            }
            #expect(r.status == 0, "acl remove through broker 3: \(r.stdout) \(r.stderr)")
            let again = try await until(seconds: Self.propagationSecondsMax) {
                try self.metadata(port: k1, topics: ["secret"]).topics.first?.errorCode == 0
            }
            #expect(again != nil, "broker 1 kept the ACL removed through broker 3")

            // Client quotas: set through broker 2, listed by broker 3.
            r = try await offPool {
                try runCommand("spool", ["quota", "set", "--kafka", "127.0.0.1:\(k2)", "--user", "alice", "--producer-byte-rate", "4096"])
            }
            #expect(r.status == 0, "quota set through broker 2: \(r.stdout) \(r.stderr)")
            let k3 = try await offPool { try b3.kafkaPort() }
            let listed = try await until(seconds: Self.propagationSecondsMax) {
                let list = try runCommand("spool", ["quota", "list", "--kafka", "127.0.0.1:\(k3)"])
                return list.status == 0 && list.stdout.contains("alice") && list.stdout.contains("4096")
            }
            #expect(listed != nil, "broker 3 never listed the quota set through broker 2")
            #expect(!FileManager.default.fileExists(atPath: root + "/broker-2/client-quotas.meta"))
        }
    }
}

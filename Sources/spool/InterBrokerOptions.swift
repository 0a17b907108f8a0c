import ArgumentParser
import Foundation
import SpoolKafka
import SpoolReplication
import SpoolSecurity

/// How this broker, as a follower, reaches and logs in to leaders (cluster mode): Kafka's
/// `security.inter.broker.protocol` and `sasl.mechanism.inter.broker.protocol`, plus the TLS
/// client files and the broker's own SASL user. The protocol must be one this broker listens
/// on itself (as in Kafka, every broker offers the listener the others dial).
struct InterBrokerOptions: ParsableArguments {
    @Option(help: "Which Kafka listener followers dial on the leader: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (security.inter.broker.protocol). Default: the first --kafka-listen's protocol.")
    var interBrokerSecurityProtocol: String?
    @Option(help: "SASL mechanism of the inter-broker login: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanism.inter.broker.protocol). Default: SCRAM-SHA-512.")
    var interBrokerSaslMechanism: String?
    @Option(help: "The SASL user this broker logs in to leaders as (inter.broker.sasl.user); it needs CLUSTER_ACTION or to be a super user.")
    var interBrokerSaslUser: String?
    @Option(help: "A file whose first line is that user's password (inter.broker.sasl.password.file).")
    var interBrokerPasswordFile: String?
    @Option(help: "PEM CA the leaders' certificates must chain to (inter.broker.ssl.ca). Default: kafka.ssl.client.ca, else the system roots.")
    var interBrokerSslCa: String?
    @Option(help: "PEM client certificate for mutual TLS to leaders (inter.broker.ssl.certificate). Default: kafka.ssl.certificate when kafka.ssl.client.auth is not none.")
    var interBrokerSslCertificate: String?
    @Option(help: "PEM key of that certificate (inter.broker.ssl.key). Default: kafka.ssl.key, with the certificate's default.")
    var interBrokerSslKey: String?

    static let keys = ["security.inter.broker.protocol", "sasl.mechanism.inter.broker.protocol", "inter.broker.sasl.user",
                       "inter.broker.sasl.password.file", "inter.broker.ssl.ca", "inter.broker.ssl.certificate", "inter.broker.ssl.key"]
    /// Longest password file read (a password, not data).
    static let passwordFileBytesMax = 4096

    /// The flags over the file's keys.
    func merged(file: [String: String]) -> [String: String] {
        var s = file.filter { Self.keys.contains($0.key) }
        if let v = interBrokerSecurityProtocol { s["security.inter.broker.protocol"] = v }
        if let v = interBrokerSaslMechanism { s["sasl.mechanism.inter.broker.protocol"] = v }
        if let v = interBrokerSaslUser { s["inter.broker.sasl.user"] = v }
        if let v = interBrokerPasswordFile { s["inter.broker.sasl.password.file"] = v }
        if let v = interBrokerSslCa { s["inter.broker.ssl.ca"] = v }
        if let v = interBrokerSslCertificate { s["inter.broker.ssl.certificate"] = v }
        if let v = interBrokerSslKey { s["inter.broker.ssl.key"] = v }
        return s
    }

    /// The follower's security, checked against this broker's own Kafka listeners. `file`
    /// holds the config file's settings (kafka.ssl.* give the TLS defaults); `clustered` is
    /// false in single-broker mode, where any inter-broker setting is an error.
    func resolve(file: [String: String], listeners: [KafkaListenerConfig], clustered: Bool) throws -> InterBrokerSecurity {
        let s = merged(file: file)
        guard clustered else {
            if let key = s.keys.sorted().first { throw ValidationError("\(key) is for cluster mode (--etcd)") }
            return .plaintext
        }
        let proto: KafkaSecurityProtocol
        if let text = s["security.inter.broker.protocol"] {
            guard let p = KafkaSecurityProtocol(rawValue: text.uppercased()) else {
                throw ValidationError("security.inter.broker.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (got '\(text)')")
            }
            proto = p
        } else {
            guard let first = listeners.first else {
                throw ValidationError("cluster mode needs a Kafka listener: followers fetch from the leader's (kafka.listen)")
            }
            proto = first.securityProtocol
        }
        guard let own = listeners.first(where: { $0.securityProtocol == proto }) else {
            throw ValidationError("security.inter.broker.protocol=\(proto.rawValue) needs a \(proto.rawValue):// Kafka listener on every broker, this one too (kafka.listen)")
        }
        var tls: InterBrokerSecurity.TLSContext?
        if proto.usesTLS {
            let ca = s["inter.broker.ssl.ca"] ?? own.tls?.clientCAPath
            var certificate = s["inter.broker.ssl.certificate"], key = s["inter.broker.ssl.key"]
            if certificate == nil && key == nil, let listenerTLS = own.tls, listenerTLS.clientAuth != .none {
                // The leaders ask for client certificates: present this broker's own, as Kafka does.
                certificate = listenerTLS.certificatePath
                key = listenerTLS.keyPath
            }
            guard (certificate == nil) == (key == nil) else {
                throw ValidationError("inter.broker.ssl.certificate and inter.broker.ssl.key go together")
            }
            do {
                tls = try TLSSettings.makeClientContext(caPath: ca, certificatePath: certificate, keyPath: key)
            } catch {
                throw ValidationError("inter-broker TLS: \(error.message)")
            }
        } else if let key = ["inter.broker.ssl.ca", "inter.broker.ssl.certificate", "inter.broker.ssl.key"].first(where: { s[$0] != nil }) {
            throw ValidationError("\(key) needs security.inter.broker.protocol SSL or SASL_SSL (it is \(proto.rawValue))")
        }
        var sasl: InterBrokerSecurity.Sasl?
        if proto.usesSASL {
            let mechanism = s["sasl.mechanism.inter.broker.protocol"] ?? "SCRAM-SHA-512"
            guard SaslClientExchange.mechanisms.contains(mechanism) else {
                throw ValidationError("sasl.mechanism.inter.broker.protocol must be one of \(SaslClientExchange.mechanisms.joined(separator: ", ")) (got '\(mechanism)')")
            }
            guard own.saslMechanisms.contains(mechanism) else {
                throw ValidationError("sasl.mechanism.inter.broker.protocol=\(mechanism) is not among this broker's sasl.enabled.mechanisms (\(own.saslMechanisms.joined(separator: ",")))")
            }
            guard let user = s["inter.broker.sasl.user"], !user.isEmpty, let path = s["inter.broker.sasl.password.file"] else {
                throw ValidationError("security.inter.broker.protocol=\(proto.rawValue) needs inter.broker.sasl.user and inter.broker.sasl.password.file (--inter-broker-sasl-user, --inter-broker-password-file)")
            }
            sasl = .init(mechanism: mechanism, user: user, password: try Self.readPassword(path))
        } else if let key = ["sasl.mechanism.inter.broker.protocol", "inter.broker.sasl.user", "inter.broker.sasl.password.file"].first(where: { s[$0] != nil }) {
            throw ValidationError("\(key) needs security.inter.broker.protocol SASL_PLAINTEXT or SASL_SSL (it is \(proto.rawValue))")
        }
        do {
            return try InterBrokerSecurity(securityProtocol: proto, tls: tls, sasl: sasl)
        } catch {
            throw ValidationError("inter-broker security: \(error.message)")
        }
    }

    /// The first line of `path` (without its newline).
    static func readPassword(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read inter.broker.sasl.password.file \(path)") }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: passwordFileBytesMax + 1)) ?? Data()
        guard data.count <= passwordFileBytesMax else { throw ValidationError("inter.broker.sasl.password.file \(path) is over \(passwordFileBytesMax) bytes") }
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard !password.isEmpty else { throw ValidationError("inter.broker.sasl.password.file \(path) holds no password on its first line") }
        return password
    }
}

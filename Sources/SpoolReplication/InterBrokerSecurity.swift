import NIOSSL
import SpoolKafka
import SpoolSecurity

/// How a follower reaches and logs in to its leader's Kafka listener: Kafka's
/// `security.inter.broker.protocol` (which of the leader's listeners to dial), the TLS client
/// settings for SSL / SASL_SSL, and `sasl.mechanism.inter.broker.protocol` with the broker's
/// own SASL user for SASL_PLAINTEXT / SASL_SSL. The leader authorizes the follower's fetches
/// as any other principal's: it needs CLUSTER_ACTION on the cluster (or to be a super user).
///
/// ```swift
/// let tls = try TLSSettings.makeClientContext(caPath: "certs/ca.pem", certificatePath: "certs/broker.pem", keyPath: "certs/broker.key")
/// let security = try InterBrokerSecurity(securityProtocol: .saslSsl, tls: tls,
///                                        sasl: .init(mechanism: "SCRAM-SHA-512", user: "broker", password: pw))
/// let fetchers = ReplicaFetcherManager(broker: broker, nodeId: 2, security: security)
/// ```
public struct InterBrokerSecurity: Sendable {
    /// A SASL login: mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), user and password.
    public struct Sasl: Sendable {
        public var mechanism: String
        public var user: String
        public var password: String
        public init(mechanism: String, user: String, password: String) {
            self.mechanism = mechanism
            self.user = user
            self.password = password
        }
    }

    /// A TLS client context (`TLSSettings.makeClientContext`).
    public typealias TLSContext = NIOSSLContext

    /// The kind of the leader's listener a follower dials.
    public let securityProtocol: KafkaSecurityProtocol
    /// The TLS client context (trust roots, the client certificate for mutual TLS); set
    /// exactly when the protocol uses TLS.
    public let tls: NIOSSLContext?
    /// The name the leader's certificate must carry; nil: the address dialled (an IP address
    /// is checked against the certificate's IP SANs).
    public let tlsServerName: String?
    /// Set exactly when the protocol uses SASL.
    public let sasl: Sasl?

    /// Plaintext, no login: a cluster whose brokers all have a PLAINTEXT listener.
    public static let plaintext = try! InterBrokerSecurity(securityProtocol: .plaintext)

    public init(securityProtocol: KafkaSecurityProtocol, tls: NIOSSLContext? = nil, tlsServerName: String? = nil, sasl: Sasl? = nil) throws(SecurityError) {
        guard securityProtocol.usesTLS == (tls != nil) else {
            throw SecurityError(.tls, securityProtocol.usesTLS ? "inter-broker \(securityProtocol.rawValue) needs TLS client settings"
                                                               : "inter-broker \(securityProtocol.rawValue) takes no TLS settings")
        }
        guard securityProtocol.usesSASL == (sasl != nil) else {
            throw SecurityError(.authenticationFailed, securityProtocol.usesSASL ? "inter-broker \(securityProtocol.rawValue) needs a SASL user and password"
                                                                                 : "inter-broker \(securityProtocol.rawValue) takes no SASL login")
        }
        if let sasl, !SaslClientExchange.mechanisms.contains(sasl.mechanism) {
            throw SecurityError(.malformed, "inter-broker SASL mechanism must be one of \(SaslClientExchange.mechanisms.joined(separator: ", ")) (got \(sasl.mechanism))")
        }
        self.securityProtocol = securityProtocol
        self.tls = tls
        self.tlsServerName = tlsServerName
        self.sasl = sasl
    }
}

/// TLS for a client connection (`ConnectionConfig.tls`): whom to trust, and an optional
/// client certificate for a broker that asks for one (mutual TLS; its common name becomes
/// the connection's principal, `User:CN=<name>`).
///
/// ```swift
/// var config = ConnectionConfig(host: "127.0.0.1", port: 9293)
/// config.tls = ClientTLSConfig(caPath: "certs/ca.pem")
/// config.sasl = ClientSaslConfig(user: "alice", password: password, mechanism: "SCRAM-SHA-512")
/// ```
public struct ClientTLSConfig: Sendable, Equatable {
    /// PEM CA that signs the broker's certificate; nil: the system's roots.
    public var caPath: String?
    /// PEM client certificate (chain) and key, for mutual TLS.
    public var certificatePath: String?
    public var keyPath: String?
    /// The name the broker's certificate must carry (and SNI); nil: the host connected to.
    /// An IP address is checked against the certificate's IP SANs.
    public var serverName: String?

    public init(caPath: String? = nil, certificatePath: String? = nil, keyPath: String? = nil, serverName: String? = nil) {
        self.caPath = caPath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.serverName = serverName
    }
}

/// SCRAM credentials for a client connection (`ConnectionConfig.sasl`): after the handshake
/// the connection authenticates through the Authenticate call (FRAMING.md, "Authentication").
public struct ClientSaslConfig: Sendable, Equatable {
    /// The SCRAM mechanisms the client speaks.
    public static let mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-512"]

    public var user: String
    public var password: String
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    public var mechanism: String

    public init(user: String, password: String, mechanism: String = "SCRAM-SHA-512") {
        self.user = user
        self.password = password
        self.mechanism = mechanism
    }
}

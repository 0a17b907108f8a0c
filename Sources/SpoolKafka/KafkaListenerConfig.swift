import SpoolSecurity

/// Settings of the Kafka listener, with Kafka's defaults where Kafka has one.
public struct KafkaListenerConfig: Sendable {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    public var securityProtocol: KafkaSecurityProtocol = .plaintext
    /// Certificate, key and client authentication; required when the protocol uses TLS.
    public var tls: TLSSettings?
    /// The SCRAM credentials: SASL checks against them, and Describe/AlterUserScramCredentials
    /// answer from them (nil: those calls answer that security is disabled).
    public var credentials: CredentialStore?
    /// The SASL mechanisms offered on a SASL listener.
    public var saslMechanisms: [String] = SaslServerSession.mechanisms
    /// Kafka's `connections.max.reauth.ms`: a SASL session lasts this long (told to the client as
    /// SessionLifetimeMs; a connection that does not re-authenticate in time is closed). Nil: forever.
    public var reauthMillis: Int64?

    /// Address to listen on. Default: loopback only.
    public var host = "127.0.0.1"
    /// Port to listen on (Kafka's default); 0 picks a free one.
    public var port = 9092
    /// The host Metadata and FindCoordinator report (an address clients can reach, KAFKA.md
    /// pitfall 6); nil: the bound host.
    public var advertisedHost: String?
    /// The port Metadata and FindCoordinator report; nil: the bound port.
    public var advertisedPort: Int?
    /// This broker's node id in Metadata (a single-node cluster).
    public var nodeId: Int32 = 0
    /// The cluster id Metadata reports.
    public var clusterId = "spool-cluster"
    /// Kafka's `auto.create.topics.enable`: Metadata for an unknown topic creates it
    /// (with the broker's default partition count) when the client allows it.
    public var autoCreateTopics = true
    /// Largest request accepted (Kafka's `socket.request.max.bytes`); a larger size field
    /// closes the connection before the request is buffered.
    public var maxRequestBytes = 100 << 20
    /// Requests read ahead on one connection while earlier ones are unanswered; beyond
    /// this the connection stops reading until answers go out.
    public var maxInFlightPerConnection = 128
    /// Close a connection after this long without a request and with nothing in flight
    /// (Kafka's `connections.max.idle.ms`, 10 minutes).
    public var idleTimeoutSeconds: Int64 = 600
    /// The largest records span one partition may return in a Fetch response.
    public var fetchSpanBytesMax = 64 << 20
    /// Most record bytes one Fetch response carries, whatever the client asks for (Kafka's
    /// broker setting `fetch.max.bytes`, 55 MiB); the first batch found is sent regardless.
    public var fetchResponseBytesMax = 55 << 20

    public init() {}

    /// Parses "HOST:PORT" (the host may be empty for all interfaces).
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        return (String(text[..<colon]), port)
    }
}

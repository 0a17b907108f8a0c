/// Where a `SpoolConnection` goes and how long it waits. Defaults follow Kafka's
/// client settings where one exists (named in each comment).
public struct ConnectionConfig: Sendable {
    public var host: String
    public var port: Int
    /// Sent in the handshake; shows up in the broker's log.
    public var clientID = "spool-swift"
    /// TCP connect bound. Kafka: `socket.connection.setup.timeout.ms` (10 s).
    public var connectTimeoutMillis = 10_000
    /// Bound on the handshake answer after TCP connect: a peer that accepts and never
    /// answers (another kind of server) fails here instead of hanging.
    public var handshakeTimeoutMillis = 10_000
    /// Default deadline of a call, on top of any wait the call asks the broker for
    /// (a long-polling fetch adds its `maxWaitMillis`). Kafka: `request.timeout.ms` (30 s).
    public var requestTimeoutMillis = 30_000
    /// First pause before reconnecting after the connection broke; doubles per failed
    /// attempt up to `reconnectBackoffMaxMillis`. Kafka: `reconnect.backoff.ms` (50 ms).
    public var reconnectBackoffMillis = 50
    /// Kafka: `reconnect.backoff.max.ms` (1 s).
    public var reconnectBackoffMaxMillis = 1_000
    /// Largest frame accepted from the broker.
    public var maxInboundFrameBytes = 64 << 20
    /// How often calls in flight are checked against their deadlines.
    public var deadlineSweepMillis = 100
    /// TLS to the broker's listener; nil: plaintext.
    public var tls: ClientTLSConfig?
    /// SCRAM credentials to authenticate with after the handshake; nil: anonymous (or the
    /// client certificate's principal).
    public var sasl: ClientSaslConfig?

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, as people write it.
    public var address: String { "\(host):\(port)" }

    /// The pause before reconnect attempt number `failures` (1-based).
    func backoffMillis(afterFailures failures: Int) -> Int {
        guard failures > 0 else { return 0 }
        let shift = min(failures - 1, 20)
        return min(reconnectBackoffMaxMillis, reconnectBackoffMillis << shift)
    }
}

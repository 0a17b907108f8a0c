/// How an `EtcdClient` reaches etcd and how long it waits. Plain values with documented defaults.
public struct EtcdClientConfiguration: Sendable {
    /// The members' client URLs, tried in order from the last one that answered.
    public var endpoints: [EtcdEndpoint]
    /// Deadline of a whole call, over every endpoint it tries (unless the call passes its own).
    public var requestTimeout: Duration = .seconds(5)
    /// How long one attempt on one endpoint may take before an idempotent call moves to the next
    /// (a member cut off from its quorum accepts connections but answers late or never).
    public var attemptTimeout: Duration = .seconds(2)
    /// TCP connect bound per attempt (loopback refuses at once; a dead host does not).
    public var connectTimeout: Duration = .seconds(1)
    /// Idle keep-alive connections kept per endpoint.
    public var idleConnectionsPerEndpointMax = 4
    /// Largest unary answer accepted, in bytes (a range over many keys is the big one).
    public var answerBytesMax = 64 << 20
    /// Largest single watch message accepted, in bytes.
    public var watchLineBytesMax = 64 << 20
    /// How often a watch checks that its member still serves a linearizable read (a member cut
    /// off from its peers, or left without a quorum, keeps a watch open and silent: its client
    /// would never hear of a change again). A failed check ends the watch with `.unavailable`, and
    /// `EtcdResumingWatch` resumes it on another member. Zero: never.
    public var watchProbeInterval: Duration = .seconds(1)
    /// First pause after every endpoint failed once; doubles per round up to `retryBackoffMax`.
    public var retryBackoff: Duration = .milliseconds(50)
    public var retryBackoffMax: Duration = .milliseconds(500)

    /// Told about every unary call once it ended: the operation (`range`, `put`, `txn`,
    /// `lease_grant`, `lease_keepalive`, ...), its duration and whether it succeeded. For metrics;
    /// must not block.
    public var requestObserver: (@Sendable (_ operation: String, _ duration: Duration, _ succeeded: Bool) -> Void)?

    public init(endpoints: [EtcdEndpoint]) { self.endpoints = endpoints }

    /// From a comma-separated list: `http://127.0.0.1:2379,http://127.0.0.1:12379`.
    public init(endpoints: String) throws { self.endpoints = try EtcdEndpoint.list(endpoints) }
}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        if seconds >= Int64.max / 1_000_000_000 { return .max }
        if seconds < 0 { return 0 }
        return max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

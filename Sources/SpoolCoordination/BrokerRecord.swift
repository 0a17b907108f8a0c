/// What a live broker publishes under `/spool/<cluster-id>/brokers/<node-id>` (JSON), attached to
/// its lease: the key vanishes when the broker stops renewing it.
public struct BrokerRecord: Codable, Sendable, Hashable {
    public var nodeId: Int32
    /// HOST:PORT of the native listener other brokers and Spool clients dial.
    public var nativeAddress: String
    /// HOST:PORT of the Kafka listener Kafka clients are told about (the first listener).
    public var kafkaAddress: String
    /// Every Kafka listener's advertised HOST:PORT by its security protocol (`PLAINTEXT`,
    /// `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`: Kafka's listener names). Metadata answers a client
    /// with the addresses of the listener kind it came in on; followers dial the leader's
    /// inter-broker listener. Nil in a record from a broker that published only `kafkaAddress`.
    public var kafkaListeners: [String: String]?

    public init(nodeId: Int32, nativeAddress: String, kafkaAddress: String, kafkaListeners: [String: String]? = nil) {
        self.nodeId = nodeId
        self.nativeAddress = nativeAddress
        self.kafkaAddress = kafkaAddress
        self.kafkaListeners = kafkaListeners
    }

    /// The advertised address of the listener for `securityProtocol`: the listener map's entry,
    /// or `kafkaAddress` for a record without a map; nil when the broker has no such listener.
    public func kafkaAddress(for securityProtocol: String) -> String? {
        guard let kafkaListeners else { return kafkaAddress.isEmpty ? nil : kafkaAddress }
        return kafkaListeners[securityProtocol]
    }
}

/// What the controller publishes under `/spool/<cluster-id>/controller` (JSON), attached to its
/// lease. The key's create revision is the controller epoch.
public struct ControllerRecord: Codable, Sendable, Hashable {
    public var nodeId: Int32

    public init(nodeId: Int32) { self.nodeId = nodeId }
}

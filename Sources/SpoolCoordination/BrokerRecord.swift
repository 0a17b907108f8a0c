/// What a live broker publishes under `/spool/<cluster-id>/brokers/<node-id>` (JSON), attached to
/// its lease: the key vanishes when the broker stops renewing it.
public struct BrokerRecord: Codable, Sendable, Hashable {
    public var nodeId: Int32
    /// HOST:PORT of the native listener other brokers and Spool clients dial.
    public var nativeAddress: String
    /// HOST:PORT of the Kafka listener Kafka clients are told about.
    public var kafkaAddress: String

    public init(nodeId: Int32, nativeAddress: String, kafkaAddress: String) {
        self.nodeId = nodeId
        self.nativeAddress = nativeAddress
        self.kafkaAddress = kafkaAddress
    }
}

/// What the controller publishes under `/spool/<cluster-id>/controller` (JSON), attached to its
/// lease. The key's create revision is the controller epoch.
public struct ControllerRecord: Codable, Sendable, Hashable {
    public var nodeId: Int32

    public init(nodeId: Int32) { self.nodeId = nodeId }
}

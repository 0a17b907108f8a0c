import SpoolBroker

// The authorization step of the Kafka APIs (SECURITY.md's per-API table): every handler
// asks here, with the call's principal and host, before it touches a resource. The
// decision itself (ACLs, super users, the no-ACL default) and the denial's log line and
// counter are the broker core's (`Broker.authorize`).
extension KafkaAPIs {
    /// Whether the call may do `operation` on the topic.
    func may(_ call: KafkaCall, _ operation: AclOperation, topic: String, log: Bool = true) -> Bool {
        broker.authorize(call.identity, operation, .topic, topic, api: call.api.name, log: log)
    }

    /// Whether the call may do `operation` on the consumer group.
    func may(_ call: KafkaCall, _ operation: AclOperation, group: String, log: Bool = true) -> Bool {
        broker.authorize(call.identity, operation, .group, group, api: call.api.name, log: log)
    }

    /// Whether the call may do `operation` on the transactional id.
    func may(_ call: KafkaCall, _ operation: AclOperation, transactionalId: String, log: Bool = true) -> Bool {
        broker.authorize(call.identity, operation, .transactionalId, transactionalId, api: call.api.name, log: log)
    }

    /// Whether the call may do `operation` on the cluster.
    func mayOnCluster(_ call: KafkaCall, _ operation: AclOperation, log: Bool = true) -> Bool {
        broker.authorizeCluster(call.identity, operation, api: call.api.name, log: log)
    }

    /// Whether the call may create the topic: CREATE on the cluster or on the topic.
    func mayCreate(_ call: KafkaCall, topic: String, log: Bool = true) -> Bool {
        mayOnCluster(call, .create, log: false) || may(call, .create, topic: topic, log: log)
    }

    /// Topic failure code (29), group (30), cluster (31), transactional id (53).
    static let topicDenied = KafkaErrorCode.topicAuthorizationFailed.rawValue
    static let groupDenied = KafkaErrorCode.groupAuthorizationFailed.rawValue
    static let clusterDenied = KafkaErrorCode.clusterAuthorizationFailed.rawValue
    static let transactionalIdDenied = KafkaErrorCode.transactionalIdAuthorizationFailed.rawValue
}

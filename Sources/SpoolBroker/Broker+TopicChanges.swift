import SpoolStorage

// Growing topics and replacing their configs, on the I/O pool (they write metadata).
extension Broker {
    /// Grows a topic to `totalCount` partitions (Kafka's CreatePartitions); `assignment`: the
    /// new partitions' replicas, one list each (see `createTopic`).
    public func addPartitions(topic: String, totalCount: Int32, assignment: [[Int32]]? = nil) async throws {
        guard totalCount <= config.maxPartitionsPerTopic else {
            throw BrokerError(.invalidRequest, "\(totalCount) partitions is over the limit of \(config.maxPartitionsPerTopic) per topic")
        }
        if let admin = clusterAdministration { return try await admin.addPartitions(topic: topic, totalCount: totalCount, assignment: assignment) }
        try checkSingleNodeAssignment(assignment, partitions: nil)
        try await BrokerError.translateAsync {
            try await io.run { [storage] in _ = try storage.addPartitions(topic, totalCount: totalCount) }
        }
    }

    /// A single broker holds each partition alone: a manual assignment may name only this
    /// broker (its node id, 0 when it has none), once per partition.
    func checkSingleNodeAssignment(_ assignment: [[Int32]]?, partitions: Int32?) throws {
        guard let assignment else { return }
        let node = config.nodeId ?? 0
        guard assignment.allSatisfy({ $0 == [node] }) else {
            throw BrokerError(.invalidReplicaAssignment, "a single-node Spool broker holds each partition on broker \(node) alone")
        }
        if let partitions, assignment.count != Int(partitions) {
            throw BrokerError(.invalidReplicaAssignment, "\(assignment.count) replica lists for \(partitions) partitions")
        }
    }

    /// Replaces a topic's config overrides with what `change` makes of the current ones
    /// (Kafka's AlterConfigs and IncrementalAlterConfigs).
    public func replaceTopicOverrides(
        _ name: String, validateOnly: Bool = false, _ change: @escaping @Sendable ([String: String]) -> [String: String]
    ) async throws {
        if let admin = clusterAdministration { return try await admin.replaceOverrides(name, validateOnly: validateOnly, change) }
        try await BrokerError.translateAsync {
            try await io.run { [storage] in
                guard let definition = storage.topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
                _ = try storage.replaceOverrides(name, change(definition.overrides), validateOnly: validateOnly)
            }
        }
    }

    /// Checks topic config overrides as a create would (unknown keys and bad values throw
    /// `.invalidConfig`), without creating anything: CreateTopics with validateOnly.
    public func validateTopicConfigs(_ configs: [String: String]) throws {
        try BrokerError.translate { _ = try TopicConfig(configs, base: storage.config.topicDefaults) }
    }
}

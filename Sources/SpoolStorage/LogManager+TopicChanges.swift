/// Topic changes beyond create / delete / merge-configs: growing a topic (Kafka's
/// CreatePartitions) and replacing its config overrides (Kafka's AlterConfigs).
extension LogManager {
    /// Grows `name` to `totalCount` partitions (never shrinks: existing records keep their
    /// partitions). The new partitions' logs are created before the definition is
    /// persisted, so a crash leaves either the old count or every new log.
    @discardableResult
    public func addPartitions(_ name: String, totalCount: Int32) throws -> TopicDefinition {
        guard var definition = topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        guard totalCount > definition.partitions else {
            throw StorageError(.invalidConfig, "topic \(name) has \(definition.partitions) partitions; the new count must be larger, not \(totalCount)")
        }
        guard totalCount <= TopicStore.maxPartitions else {
            throw StorageError(.invalidConfig, "partitions must be at most \(TopicStore.maxPartitions), not \(totalCount)")
        }
        let topicConfig = try TopicConfig(definition.overrides, base: config.topicDefaults)
        let old = definition.partitions
        // Created outside the logs lock (produce and fetch take it), published together.
        var created: [TopicPartition: PartitionLog] = [:]
        do {
            for p in old..<totalCount {
                let tp = TopicPartition(name, p)
                if logs.withLock({ $0[tp] }) != nil { continue }
                created[tp] = try PartitionLog(directory: Self.directory(config.dataDirectory, tp), topic: name, partition: p,
                                               config: topicConfig, files: files, cleanShutdown: true, executor: executor, observer: observer)
            }
            try Directory.sync(config.dataDirectory, io: io)
        } catch {
            for log in created.values { try? log.delete() }
            throw error
        }
        logs.withLock { logs in logs.merge(created) { current, _ in current } }
        definition.partitions = totalCount
        try topics.update(definition)
        return definition
    }

    /// Replaces a topic's config overrides with `overrides` (keys left out return to the
    /// broker defaults); validated before anything changes.
    @discardableResult
    public func replaceOverrides(_ name: String, _ overrides: [String: String], validateOnly: Bool = false) throws -> TopicConfig {
        guard var definition = topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        let topicConfig = try TopicConfig(overrides, base: config.topicDefaults)
        if validateOnly { return topicConfig }
        definition.overrides = overrides
        try topics.update(definition)
        for log in try partitions(of: name) { log.update(config: topicConfig) }
        return topicConfig
    }
}

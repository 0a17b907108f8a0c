import SpoolRecords

/// Topic changes beyond create / delete / merge-configs: growing a topic (Kafka's
/// CreatePartitions) and replacing its config overrides (Kafka's AlterConfigs).
extension LogManager {
    /// Grows `name` to `totalCount` partitions (never shrinks: existing records keep their
    /// partitions). The new partitions' logs are created before the definition is
    /// persisted, so a crash leaves the old count (and stray directories, removed when the
    /// partitions are created again) or every new log.
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
        // The new partitions are created outside the logs lock (produce and fetch take it),
        // and appear together once all exist.
        var created: [TopicPartition: PartitionLog] = [:]
        do {
            for p in old..<totalCount {
                let tp = TopicPartition(name, p)
                let directory = Self.directory(config.dataDirectory, tp)
                // Stray data of an earlier topic of this name must not come back.
                if Directory.exists(directory, io: io) { try Directory.removeTree(directory, io: io) }
                created[tp] = try PartitionLog(directory: directory, topic: name, partition: p,
                                               config: topicConfig, files: files, cleanShutdown: true, clock: clock, executor: executor, observer: observer)
            }
            try Directory.sync(config.dataDirectory, io: io)
        } catch {
            for log in created.values { try? log.delete() }
            throw error
        }
        logs.withLock { logs in
            for (tp, log) in created { logs[tp] = log }
        }
        definition.partitions = totalCount
        do {
            try topics.update(definition)
        } catch {
            logs.withLock { logs in for tp in created.keys { logs.removeValue(forKey: tp) } }
            for log in created.values { try? log.delete() }
            throw error
        }
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

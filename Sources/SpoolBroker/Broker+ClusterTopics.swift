import SpoolStorage

// Topic configs in cluster mode: the cluster's own keys beside the storage's.
extension Broker {
    /// Topic config keys the cluster layer owns (kept in etcd's topic record): accepted by
    /// create and alter in cluster mode, checked here, not passed to local storage unless
    /// the storage knows them.
    public static let clusterTopicConfigKeys: Set<String> = ["min.insync.replicas", "unclean.leader.election.enable"]

    /// Checks topic overrides as the cluster mode accepts them: storage keys by the storage's
    /// rules, `min.insync.replicas` an integer ≥ 1, `unclean.leader.election.enable` true or false.
    public func validateClusterTopicOverrides(_ overrides: [String: String]) throws {
        if let v = overrides["min.insync.replicas"], (Int32(v) ?? 0) < 1 {
            throw BrokerError(.invalidConfig, "min.insync.replicas=\(v): expected an integer of at least 1")
        }
        if let v = overrides["unclean.leader.election.enable"], !["true", "false"].contains(v.lowercased()) {
            throw BrokerError(.invalidConfig, "unclean.leader.election.enable=\(v): expected true or false")
        }
        _ = try BrokerError.translate { try TopicConfig(Self.storedOverrides(overrides), base: config.storage.topicDefaults) }
    }

    /// The part of a cluster topic record's overrides that local storage keeps (what the
    /// cluster layer passes to `hostTopic`).
    public static func storedOverrides(_ overrides: [String: String]) -> [String: String] {
        overrides.filter { !clusterTopicConfigKeys.contains($0.key) || TopicConfig.keys.contains($0.key) }
    }

    /// The effective configs of a topic with these overrides (broker defaults for the rest).
    func effectiveConfigs(_ overrides: [String: String]) -> [String: String] {
        var entries = ((try? TopicConfig(Self.storedOverrides(overrides), base: config.storage.topicDefaults)) ?? config.storage.topicDefaults).entries
        for (k, v) in overrides where Self.clusterTopicConfigKeys.contains(k) { entries[k] = v }
        return entries
    }
}

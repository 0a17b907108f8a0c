import SpoolStorage

/// Where a dynamic broker setting applies: Kafka's per-broker config (resource name = the
/// node id) or the cluster-wide default (resource name "").
public enum BrokerConfigScope: Sendable, Hashable {
    case clusterDefault
    case broker(Int32)

    /// The scope as `BrokerConfigStore` keeps it.
    var stored: String {
        switch self {
        case .clusterDefault: BrokerConfigStore.clusterDefaultScope
        case .broker(let id): String(id)
        }
    }
}

/// One setting of a BROKER config resource, as DescribeConfigs lists it.
public struct BrokerConfigEntry: Sendable, Hashable {
    /// Where the value comes from (Kafka's config sources).
    public enum Source: Sendable, Hashable {
        /// Set through AlterConfigs for this broker.
        case dynamicBroker
        /// Set through AlterConfigs for the cluster default (resource name "").
        case dynamicDefault
        /// The broker's own setting, from its config file or flags: read-only while it runs.
        case staticBroker
    }

    public var name: String
    public var value: String
    public var source: Source
    public var readOnly: Bool { source == .staticBroker }
}

// BROKER config resources (Kafka's DescribeConfigs / AlterConfigs / IncrementalAlterConfigs
// with resource type 4): Spool's own settings are static and listed read-only; any other key
// is kept as a dynamic setting, the way Kafka keeps settings for plugins it does not know.
extension Broker {
    /// The settings of `scope`: for a broker, its static settings, the cluster defaults it
    /// inherits and its own dynamic settings (the most specific wins, as in Kafka).
    public func describeBrokerConfigs(_ scope: BrokerConfigScope) -> [BrokerConfigEntry] {
        var entries: [String: BrokerConfigEntry] = [:]
        if case .broker = scope {
            for (key, value) in config.staticSettings { entries[key] = .init(name: key, value: value, source: .staticBroker) }
        }
        for (key, value) in dynamicConfigs.get(BrokerConfigScope.clusterDefault.stored) { entries[key] = .init(name: key, value: value, source: .dynamicDefault) }
        if case .broker = scope {
            for (key, value) in dynamicConfigs.get(scope.stored) { entries[key] = .init(name: key, value: value, source: .dynamicBroker) }
        }
        return entries.values.sorted { $0.name < $1.name }
    }

    /// Replaces the dynamic settings of `scope` with `change(current)`. A key of Spool's own
    /// settings is refused (`.invalidRequest`: they are read at start only); with
    /// `validateOnly` nothing is written.
    public func replaceBrokerConfigs(
        _ scope: BrokerConfigScope, validateOnly: Bool = false, _ change: @escaping @Sendable ([String: String]) -> [String: String]
    ) async throws {
        let staticKeys = config.staticSettingKeys.union(config.staticSettings.keys)
        try await BrokerError.translateAsync {
            try await io.run { [dynamicConfigs] in
                let next = change(dynamicConfigs.get(scope.stored))
                let refused = next.keys.filter { staticKeys.contains($0) && dynamicConfigs.get(scope.stored)[$0] != next[$0] }.sorted()
                guard refused.isEmpty else {
                    throw BrokerError(.invalidRequest, "cannot change \(refused.joined(separator: ", ")) while the broker runs: "
                                      + "set it in the broker's config file and restart it")
                }
                try BrokerConfigStore.validate(next)
                if !validateOnly { try dynamicConfigs.replace(scope.stored, next) }
            }
        }
    }
}

import SpoolRecords
import SpoolStorage

/// A quota entity and its values, as listed.
public struct ClientQuota: Sendable, Hashable {
    public var entity: QuotaEntity
    public var values: QuotaValues
}

// Client quotas: the stored values (Kafka's DescribeClientQuotas / AlterClientQuotas, the
// admin API, `spool quota`), written on the I/O pool.
extension Broker {
    /// Every quota set, sorted by entity.
    public func listQuotas() -> [ClientQuota] {
        quotas.store.all.map { ClientQuota(entity: $0.key, values: $0.value) }.sorted { $0.entity.description < $1.entity.description }
    }

    /// Sets an entity's values (nil keeps a value, `.some(nil)` removes it).
    public func alterQuota(_ entity: QuotaEntity, producerByteRate: Int64?? = nil, consumerByteRate: Int64?? = nil,
                           validateOnly: Bool = false) async throws -> QuotaValues {
        if let cluster = clusterSecurity {
            var values = quotas.store.get(entity) ?? QuotaValues()
            if let rate = producerByteRate { values.producerByteRate = rate }
            if let rate = consumerByteRate { values.consumerByteRate = rate }
            try BrokerError.translate { try ClientQuotaStore.validate(values) }
            if !validateOnly { try await cluster.setQuota(entity, values) }
            return values
        }
        return try await BrokerError.translateAsync {
            try await io.run { [quotas] in
                var values = quotas.store.get(entity) ?? QuotaValues()
                if let rate = producerByteRate { values.producerByteRate = rate }
                if let rate = consumerByteRate { values.consumerByteRate = rate }
                if validateOnly {
                    for rate in [values.producerByteRate, values.consumerByteRate].compactMap({ $0 }) where rate <= 0 || rate > ClientQuotaStore.maxByteRate {
                        throw StorageError(.invalidConfig, "a byte rate must be between 1 and \(ClientQuotaStore.maxByteRate) bytes/s, not \(rate)")
                    }
                } else {
                    try quotas.store.set(entity, values)
                }
                return values
            }
        }
    }
}

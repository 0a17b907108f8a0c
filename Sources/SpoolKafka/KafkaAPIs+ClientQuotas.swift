import NIOCore
import SpoolBroker
import SpoolRecords

// DescribeClientQuotas and AlterClientQuotas (KIP-546): the byte-rate quotas per user and
// client id that `ClientQuotaManager` enforces on Produce and Fetch.
extension KafkaAPIs {
    static let quotaKeys: Set<String> = ["producer_byte_rate", "consumer_byte_rate"]

    func describeClientQuotas(_ request: DescribeClientQuotasRequest, _ call: KafkaCall) -> DescribeClientQuotasResponse {
        guard mayOnCluster(call, .describeConfigs) else {
            return .init(errorCode: Self.clusterDenied, errorMessage: "not authorized to describe client quotas")
        }
        var filters: [(type: String, match: Int8, name: String?)] = []
        for component in request.components {
            guard component.entityType == "user" || component.entityType == "client-id" else {
                return .init(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: "unknown entity type '\(component.entityType)'; Spool knows user and client-id")
            }
            guard (0...2).contains(component.matchType), (component.matchType == 0) == (component.match != nil) else {
                return .init(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: "match type \(component.matchType) with match \(component.match ?? "null") is not a filter")
            }
            filters.append((component.entityType, component.matchType, component.match))
        }
        let entries = broker.listQuotas().filter { quota in
            let parts: [String: QuotaEntity.Part] = Dictionary(uniqueKeysWithValues: [
                quota.entity.user.map { ("user", $0) }, quota.entity.clientId.map { ("client-id", $0) },
            ].compactMap { $0 })
            if request.strict && Set(parts.keys) != Set(filters.map(\.type)) { return false }
            return filters.allSatisfy { filter in
                guard let part = parts[filter.type] else { return false }
                switch (filter.match, part) {
                case (0, .name(let name)): return name == filter.name
                case (1, .defaultEntity): return true
                case (2, _): return true
                default: return false
                }
            }
        }.map { quota in
            DescribeClientQuotasResponse.Entry(
                entity: Self.kafkaEntity(quota.entity).map { .init(entityType: $0.type, entityName: $0.name) },
                values: [
                    quota.values.producerByteRate.map { DescribeClientQuotasResponse.Entry.Value(key: "producer_byte_rate", value: Double($0)) },
                    quota.values.consumerByteRate.map { DescribeClientQuotasResponse.Entry.Value(key: "consumer_byte_rate", value: Double($0)) },
                ].compactMap { $0 })
        }
        return .init(errorCode: 0, entries: entries)
    }

    func alterClientQuotas(_ request: AlterClientQuotasRequest, _ call: KafkaCall) -> EventLoopFuture<AlterClientQuotasResponse> {
        let broker = self.broker
        guard mayOnCluster(call, .alterConfigs) else {
            return call.eventLoop.makeSucceededFuture(AlterClientQuotasResponse(entries: request.entries.map { entry in
                .init(errorCode: Self.clusterDenied, errorMessage: "not authorized to alter client quotas",
                      entity: entry.entity.map { .init(entityType: $0.entityType, entityName: $0.entityName) })
            }))
        }
        return call.eventLoop.makeFutureWithTask {
            var answers: [AlterClientQuotasResponse.Entry] = []
            for entry in request.entries {
                let echo = entry.entity.map { AlterClientQuotasResponse.Entry.Entity(entityType: $0.entityType, entityName: $0.entityName) }
                func refuse(_ code: KafkaErrorCode, _ message: String) {
                    answers.append(.init(errorCode: code.rawValue, errorMessage: message, entity: echo))
                }
                var user: QuotaEntity.Part?, clientId: QuotaEntity.Part?
                var bad: String?
                for part in entry.entity {
                    let value: QuotaEntity.Part = part.entityName.map { .name($0) } ?? .defaultEntity
                    switch part.entityType {
                    case "user" where user == nil: user = value
                    case "client-id" where clientId == nil: clientId = value
                    default: bad = "entity type '\(part.entityType)' is unknown or repeated; Spool knows user and client-id"
                    }
                }
                if let bad { refuse(.invalidRequest, bad); continue }
                guard user != nil || clientId != nil else { refuse(.invalidRequest, "an entity needs a user or a client-id"); continue }
                var producer: Int64??, consumer: Int64??
                for op in entry.ops {
                    guard Self.quotaKeys.contains(op.key) else { bad = "quota '\(op.key)' is not supported; Spool enforces producer_byte_rate and consumer_byte_rate"; break }
                    let rate: Int64?? = op.remove ? .some(nil) : .some(Int64(exactly: op.value.rounded()) ?? -1)
                    if op.key == "producer_byte_rate" { producer = rate } else { consumer = rate }
                }
                if let bad { refuse(.invalidRequest, bad); continue }
                do {
                    _ = try await broker.alterQuota(QuotaEntity(user: user, clientId: clientId), producerByteRate: producer,
                                                    consumerByteRate: consumer, validateOnly: request.validateOnly)
                    answers.append(.init(errorCode: 0, errorMessage: nil, entity: echo))
                } catch {
                    refuse(KafkaErrorCode(error), "\(error)")
                }
            }
            return AlterClientQuotasResponse(entries: answers)
        }
    }

    /// An entity as Kafka names it: (type, name or nil for the default).
    static func kafkaEntity(_ entity: QuotaEntity) -> [(type: String, name: String?)] {
        func name(_ part: QuotaEntity.Part) -> String? {
            if case .name(let name) = part { return name }
            return nil
        }
        return [entity.user.map { ("user", name($0)) }, entity.clientId.map { ("client-id", name($0)) }].compactMap { $0 }
    }
}

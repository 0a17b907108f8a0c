import NIOCore
import SpoolBroker
import SpoolRecords

// Topic administration: CreateTopics, DeleteTopics, CreatePartitions and topic configs.
extension KafkaAPIs {
    /// Kafka's resource types in DescribeConfigs / AlterConfigs.
    enum ResourceType: Int8 {
        case topic = 2
        case broker = 4
    }

    /// Kafka's config sources in DescribeConfigs v1+.
    enum ConfigSource: Int8 {
        case dynamicTopic = 1
        case dynamicBroker = 2
        case dynamicDefaultBroker = 3
        case staticBroker = 4
        case defaultConfig = 5
    }

    func createTopics(_ request: CreateTopicsRequest, _ call: KafkaCall) -> EventLoopFuture<CreateTopicsResponse> {
        let broker = self.broker
        // CREATE on the cluster or on the topic. A principal that may create no topic at all
        // (no CREATE on the cluster nor on any topic pattern) is refused with
        // CLUSTER_AUTHORIZATION_FAILED for each topic; one that may create some topics but
        // not this one with TOPIC_AUTHORIZATION_FAILED (Kafka's per-topic answer).
        let clusterCreate = mayOnCluster(call, .create, log: false)
        let someCreate = clusterCreate || broker.authorizeAny(call.identity, .create, .topic, api: call.api.name, log: false)
        let allowed = request.topics.map { clusterCreate || may(call, .create, topic: $0.name) }
        return call.eventLoop.makeFutureWithTask {
            var results: [CreateTopicsResponse.Topic] = []
            for (index, topic) in request.topics.enumerated() {
                var result = CreateTopicsResponse.Topic(name: topic.name, errorCode: 0, errorMessage: nil)
                func refuse(_ code: KafkaErrorCode, _ message: String) {
                    result.errorCode = code.rawValue
                    result.errorMessage = message
                }
                guard allowed[index] else {
                    refuse(someCreate ? .topicAuthorizationFailed : .clusterAuthorizationFailed,
                           someCreate ? "not authorized to create topic \(topic.name)" : "not authorized to create topics")
                    results.append(result)
                    continue
                }
                var configs: [String: String] = [:]
                for c in topic.configs { if let value = c.value { configs[c.name] = value } }
                // A manual assignment (Kafka wants -1 for both counts with one) covers partitions
                // 0..<n; in a cluster it may name any registered brokers (checked there), a single
                // node holds each partition alone.
                var numPartitions = topic.numPartitions
                let node = self.config.nodeId
                let clustered = broker.clusterAdministration != nil
                let assigned = topic.assignments.sorted { $0.partitionIndex < $1.partitionIndex }
                let assignmentProblem: String? = assigned.isEmpty ? nil
                    : topic.numPartitions != -1 || topic.replicationFactor != -1
                        ? "with a replica assignment, numPartitions and replicationFactor must be -1"
                        : !assigned.enumerated().allSatisfy({ $0.offset == Int($0.element.partitionIndex) })
                            ? "replica assignments must cover partitions 0..<n, each once"
                            : !clustered && !assigned.allSatisfy({ $0.brokerIds == [node] })
                                ? "a single-node Spool broker holds each partition on broker \(node) alone"
                                : nil
                if assignmentProblem == nil && !assigned.isEmpty { numPartitions = Int32(assigned.count) }
                if let assignmentProblem {
                    refuse(assignmentProblem.hasPrefix("with") ? .invalidRequest : .invalidReplicaAssignment, assignmentProblem)
                } else if clustered && (topic.replicationFactor == 0 || topic.replicationFactor < -1) {
                    refuse(.invalidReplicationFactor, "replication factor \(topic.replicationFactor) is not possible (at least 1, or -1 for the default)")
                } else if !clustered && topic.replicationFactor != -1 && topic.replicationFactor != 1 {
                    refuse(.invalidReplicationFactor, "a single-node Spool broker keeps one replica; replication factor \(topic.replicationFactor) is not possible")
                } else if numPartitions == 0 || numPartitions < -1 {
                    refuse(.invalidPartitions, "a topic needs at least one partition, not \(numPartitions)")
                } else if request.validateOnly {
                    if broker.partitionCount(of: topic.name) != nil { refuse(.topicAlreadyExists, "topic \(topic.name) already exists") }
                    do { try broker.validateTopicConfigs(configs) } catch { refuse(KafkaErrorCode(error), kafkaErrorMessage(error) ?? "") }
                } else {
                    do {
                        let created = try await broker.createTopic(
                            topic.name, partitions: numPartitions == -1 ? nil : numPartitions,
                            replicationFactor: topic.replicationFactor == -1 ? nil : Int(topic.replicationFactor),
                            assignment: assigned.isEmpty ? nil : assigned.map(\.brokerIds), configs: configs)
                        result.numPartitions = Int32(created.partitions.count)
                        result.replicationFactor = Int16(created.replicationFactor)
                        result.configs = created.configs.sorted { $0.key < $1.key }.map { key, value in
                            .init(name: key, value: value, readOnly: false,
                                  configSource: (created.overrides[key] != nil ? ConfigSource.dynamicTopic : .defaultConfig).rawValue,
                                  isSensitive: false)
                        }
                    } catch {
                        refuse(KafkaErrorCode(error), kafkaErrorMessage(error) ?? "")
                    }
                }
                results.append(result)
            }
            return CreateTopicsResponse(topics: results)
        }
    }

    func deleteTopics(_ request: DeleteTopicsRequest, _ call: KafkaCall) -> EventLoopFuture<DeleteTopicsResponse> {
        // v0-5 name topics; v6 sends (name, id) pairs, and Spool has no topic ids.
        let names: [String?] = call.version >= 6 ? request.topics.map(\.name) : request.topicNames.map { $0 }
        let broker = self.broker
        return call.eventLoop.makeFutureWithTask {
            var results: [DeleteTopicsResponse.Result] = []
            for name in names {
                guard let name else {
                    results.append(.init(name: nil, errorCode: KafkaErrorCode.unknownTopicId.rawValue, errorMessage: "Spool names topics; it has no topic ids"))
                    continue
                }
                guard self.may(call, .delete, topic: name) else {
                    results.append(.init(name: name, errorCode: Self.topicDenied, errorMessage: "not authorized to delete topic \(name)"))
                    continue
                }
                do {
                    try await broker.deleteTopic(name)
                    results.append(.init(name: name, errorCode: 0))
                } catch {
                    results.append(.init(name: name, errorCode: KafkaErrorCode(error).rawValue, errorMessage: kafkaErrorMessage(error)))
                }
            }
            return DeleteTopicsResponse(responses: results)
        }
    }

    func createPartitions(_ request: CreatePartitionsRequest, _ call: KafkaCall) -> EventLoopFuture<CreatePartitionsResponse> {
        let broker = self.broker
        return call.eventLoop.makeFutureWithTask {
            var results: [CreatePartitionsResponse.Result] = []
            for topic in request.topics {
                guard self.may(call, .alter, topic: topic.name) else {
                    results.append(.init(name: topic.name, errorCode: Self.topicDenied, errorMessage: "not authorized to alter topic \(topic.name)"))
                    continue
                }
                do {
                    // The new partitions' replicas, one list each (a single node: itself alone).
                    let assignment = topic.assignments.map { $0.map(\.brokerIds) }
                    if request.validateOnly {
                        let current = try broker.describeTopic(topic.name).partitions.count
                        guard topic.count > current else {
                            throw BrokerError(.invalidRequest, "topic \(topic.name) has \(current) partitions; the new count must be larger")
                        }
                    } else {
                        try await broker.addPartitions(topic: topic.name, totalCount: topic.count, assignment: assignment)
                    }
                    results.append(.init(name: topic.name, errorCode: 0))
                } catch let error as BrokerError where error.code == .invalidRequest {
                    results.append(.init(name: topic.name, errorCode: KafkaErrorCode.invalidPartitions.rawValue, errorMessage: error.message))
                } catch {
                    results.append(.init(name: topic.name, errorCode: KafkaErrorCode(error).rawValue, errorMessage: kafkaErrorMessage(error)))
                }
            }
            return CreatePartitionsResponse(results: results)
        }
    }

    func describeConfigs(_ request: DescribeConfigsRequest, _ call: KafkaCall) -> DescribeConfigsResponse {
        DescribeConfigsResponse(results: request.resources.map { resource in
            var result = DescribeConfigsResponse.Result(
                errorCode: 0, errorMessage: nil, resourceType: resource.resourceType, resourceName: resource.resourceName)
            // DESCRIBE_CONFIGS on the topic (29) or, for a broker, on the cluster (31).
            if let denied = configsDenied(call, .describeConfigs, resource.resourceType, resource.resourceName) {
                result.errorCode = denied
                result.errorMessage = "not authorized to describe the configs of \(resource.resourceName)"
                return result
            }
            switch ResourceType(rawValue: resource.resourceType) {
            case .topic:
                do {
                    let description = try broker.describeTopic(resource.resourceName)
                    let wanted = resource.configurationKeys.map(Set.init)
                    result.configs = description.configs.sorted { $0.key < $1.key }
                        .filter { wanted?.contains($0.key) ?? true }
                        .map { key, value in
                            let overridden = description.overrides[key] != nil
                            return .init(
                                name: key, value: value, readOnly: false, isDefault: !overridden,
                                configSource: (overridden ? ConfigSource.dynamicTopic : .defaultConfig).rawValue,
                                isSensitive: false, documentation: nil)
                        }
                } catch {
                    result.errorCode = KafkaErrorCode(error).rawValue
                    result.errorMessage = kafkaErrorMessage(error)
                }
            case .broker:
                switch brokerConfigScope(resource.resourceName) {
                case .success(let scope):
                    let wanted = resource.configurationKeys.map(Set.init)
                    result.configs = broker.describeBrokerConfigs(scope).filter { wanted?.contains($0.name) ?? true }.map { entry in
                        let source: ConfigSource = switch entry.source {
                        case .dynamicBroker: .dynamicBroker
                        case .dynamicDefault: .dynamicDefaultBroker
                        case .staticBroker: .staticBroker
                        }
                        return .init(name: entry.name, value: entry.value, readOnly: entry.readOnly, isDefault: false,
                                     configSource: source.rawValue, isSensitive: false, documentation: nil)
                    }
                case .failure(let refusal):
                    result.errorCode = refusal.code.rawValue
                    result.errorMessage = refusal.message
                }
            case nil:
                result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                result.errorMessage = "resource type \(resource.resourceType) is not supported (topics: 2, brokers: 4)"
            }
            return result
        })
    }

    /// AlterConfigs replaces a topic's whole set of overrides, or a broker's dynamic settings.
    func alterConfigs(_ request: AlterConfigsRequest, _ call: KafkaCall) -> EventLoopFuture<AlterConfigsResponse> {
        let broker = self.broker
        return call.eventLoop.makeFutureWithTask {
            var results: [AlterConfigsResponse.Result] = []
            for resource in request.resources {
                var given: [String: String] = [:]
                for c in resource.configs { if let value = c.value { given[c.name] = value } }
                let overrides = given
                if let denied = self.configsDenied(call, .alterConfigs, resource.resourceType, resource.resourceName) {
                    results.append(.init(errorCode: denied, errorMessage: "not authorized to alter the configs of \(resource.resourceName)",
                                         resourceType: resource.resourceType, resourceName: resource.resourceName))
                    continue
                }
                let outcome = await self.alterConfigResource(resource.resourceType, resource.resourceName, validateOnly: request.validateOnly) { _ in overrides }
                results.append(.init(errorCode: outcome.0.rawValue, errorMessage: outcome.1,
                                     resourceType: resource.resourceType, resourceName: resource.resourceName))
            }
            return AlterConfigsResponse(responses: results)
        }
    }

    /// IncrementalAlterConfigs sets (op 0) or deletes (op 1) single keys.
    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, _ call: KafkaCall) -> EventLoopFuture<IncrementalAlterConfigsResponse> {
        let broker = self.broker
        return call.eventLoop.makeFutureWithTask {
            var results: [IncrementalAlterConfigsResponse.Result] = []
            for resource in request.resources {
                let operations = resource.configs
                let outcome: (KafkaErrorCode, String?)
                if let denied = self.configsDenied(call, .alterConfigs, resource.resourceType, resource.resourceName) {
                    outcome = (KafkaErrorCode(rawValue: denied)!, "not authorized to alter the configs of \(resource.resourceName)")
                } else if let bad = operations.first(where: { $0.configOperation != 0 && $0.configOperation != 1 }) {
                    outcome = (.invalidRequest, "config operation \(bad.configOperation) on \(bad.name): only set (0) and delete (1) apply to Spool's settings")
                } else {
                    outcome = await self.alterConfigResource(resource.resourceType, resource.resourceName, validateOnly: request.validateOnly) { current in
                        var next = current
                        for op in operations {
                            if op.configOperation == 0, let value = op.value { next[op.name] = value } else { next.removeValue(forKey: op.name) }
                        }
                        return next
                    }
                }
                results.append(.init(errorCode: outcome.0.rawValue, errorMessage: outcome.1,
                                     resourceType: resource.resourceType, resourceName: resource.resourceName))
            }
            return IncrementalAlterConfigsResponse(responses: results)
        }
    }

    /// The refusal code when the call may not do `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS)
    /// on a config resource: a topic's (29) or a broker's, checked on the cluster (31); nil if allowed.
    func configsDenied(_ call: KafkaCall, _ operation: AclOperation, _ type: Int8, _ name: String) -> Int16? {
        switch ResourceType(rawValue: type) {
        case .topic: may(call, operation, topic: name) ? nil : Self.topicDenied
        case .broker: mayOnCluster(call, operation) ? nil : Self.clusterDenied
        case nil: nil
        }
    }

    /// Why a config resource's name was refused.
    struct ConfigResourceRefusal: Error {
        let code: KafkaErrorCode
        let message: String
    }

    /// A BROKER resource's scope: "" is the cluster default, else it must be this broker's id.
    func brokerConfigScope(_ name: String) -> Result<BrokerConfigScope, ConfigResourceRefusal> {
        if name.isEmpty { return .success(.clusterDefault) }
        let own = broker.config.nodeId ?? config.nodeId
        guard let id = Int32(name) else {
            return .failure(.init(code: .invalidRequest, message: "a broker config resource is named by a node id or \"\" (the cluster default), not '\(name)'"))
        }
        guard id == own else {
            return .failure(.init(code: .invalidRequest, message: "broker \(id) is not this broker (\(own)): send its config requests to it"))
        }
        return .success(.broker(id))
    }

    private static func alterTopic(
        _ broker: Broker, _ type: Int8, _ name: String, validateOnly: Bool, _ change: @escaping @Sendable ([String: String]) -> [String: String]
    ) async -> (KafkaErrorCode, String?) {
        guard ResourceType(rawValue: type) == .topic else {
            return (.invalidRequest, "only topic (2) and broker (4) configs can be altered")
        }
        do {
            try await broker.replaceTopicOverrides(name, validateOnly: validateOnly, change)
            return (.none, nil)
        } catch {
            return (KafkaErrorCode(error), kafkaErrorMessage(error))
        }
    }

    /// A topic's overrides or, for a BROKER resource, its dynamic settings, replaced by `change`.
    func alterConfigResource(
        _ type: Int8, _ name: String, validateOnly: Bool, _ change: @escaping @Sendable ([String: String]) -> [String: String]
    ) async -> (KafkaErrorCode, String?) {
        guard ResourceType(rawValue: type) == .broker else {
            return await Self.alterTopic(broker, type, name, validateOnly: validateOnly, change)
        }
        switch brokerConfigScope(name) {
        case .failure(let refusal):
            return (refusal.code, refusal.message)
        case .success(let scope):
            do {
                try await broker.replaceBrokerConfigs(scope, validateOnly: validateOnly, change)
                return (.none, nil)
            } catch {
                return (KafkaErrorCode(error), kafkaErrorMessage(error))
            }
        }
    }
}

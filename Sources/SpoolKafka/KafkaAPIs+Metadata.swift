import NIOCore
import SpoolBroker
import SpoolRecords

// Metadata and FindCoordinator: a single-node cluster where this broker leads every partition.
extension KafkaAPIs {
    var brokerEntry: MetadataResponse.Broker {
        .init(nodeId: broker.config.nodeId ?? config.nodeId, host: advertisedHost, port: advertisedPort, rack: nil)
    }

    func metadata(_ request: MetadataRequest, _ call: KafkaCall) -> EventLoopFuture<MetadataResponse> {
        // v0: an empty list means every topic; v1+: null means every topic.
        let names: [String]?
        if let topics = request.topics, !(call.version == 0 && topics.isEmpty) {
            names = topics.map { $0.name ?? "" }
        } else {
            names = nil
        }
        let autoCreate = config.autoCreateTopics && request.allowAutoTopicCreation
        let broker = self.broker
        let apis = self
        // Authorization: a listing of every topic leaves out those the principal may not
        // DESCRIBE (silently); a named one answers TOPIC_AUTHORIZATION_FAILED, and so does
        // one to be auto-created without CREATE (on the cluster or the topic).
        let visible: @Sendable (String) -> Bool = { name in apis.may(call, .describe, topic: name, log: names != nil) }
        let creatable: @Sendable (String) -> Bool = { name in apis.mayCreate(call, topic: name) }
        if let cluster = broker.clusterAdministration {
            return call.eventLoop.makeFutureWithTask {
                try await apis.clusterMetadata(names: names, autoCreate: autoCreate, cluster: cluster, visible: visible, creatable: creatable)
            }
        }
        return call.eventLoop.makeFutureWithTask {
            var topics: [MetadataResponse.Topic] = []
            for name in names ?? broker.listTopics().map(\.name) {
                guard visible(name) else {
                    if names != nil { topics.append(.init(errorCode: Self.topicDenied, name: name)) }
                    continue
                }
                if broker.partitionCount(of: name) == nil && autoCreate {
                    guard creatable(name) else {
                        topics.append(.init(errorCode: Self.topicDenied, name: name))
                        continue
                    }
                    do {
                        _ = try await broker.createTopic(name, partitions: nil)
                    } catch let error as BrokerError where error.code == .topicExists {
                        // Created by a concurrent request: describe it below.
                    } catch {
                        topics.append(.init(errorCode: KafkaErrorCode(error).rawValue, name: name))
                        continue
                    }
                }
                topics.append(apis.describeForMetadata(name))
            }
            return MetadataResponse(
                brokers: [apis.brokerEntry], clusterId: apis.config.clusterId, controllerId: apis.config.nodeId, topics: topics)
        }
    }

    /// One topic as Metadata shows it: this node leads every partition at leader epoch 0.
    func describeForMetadata(_ name: String) -> MetadataResponse.Topic {
        guard let partitionCount = broker.partitionCount(of: name) else {
            let code: KafkaErrorCode = Broker.isValidTopicName(name) ? .unknownTopicOrPartition : .invalidTopicException
            return .init(errorCode: code.rawValue, name: name)
        }
        let node = config.nodeId
        let partitions = (0..<partitionCount).map { p in
            MetadataResponse.Topic.Partition(
                errorCode: 0, partitionIndex: p, leaderId: node, leaderEpoch: 0, replicaNodes: [node], isrNodes: [node],
                offlineReplicas: [])
        }
        return .init(errorCode: 0, name: name, isInternal: false, partitions: partitions)
    }

    func findCoordinator(_ request: FindCoordinatorRequest, _ call: KafkaCall) -> FindCoordinatorResponse {
        // Key type 0 (group) and 1 (transaction): this broker coordinates both.
        guard request.keyType == 0 || request.keyType == 1 else {
            return FindCoordinatorResponse(
                errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue,
                errorMessage: "unknown coordinator key type \(request.keyType)", nodeId: -1, host: "", port: -1)
        }
        // DESCRIBE on the group or the transactional id.
        if request.keyType == 0 && !may(call, .describe, group: request.key) {
            return FindCoordinatorResponse(errorCode: Self.groupDenied, errorMessage: "not authorized to describe group \(request.key)",
                                           nodeId: -1, host: "", port: -1)
        }
        if request.keyType == 1 && !may(call, .describe, transactionalId: request.key) {
            return FindCoordinatorResponse(errorCode: Self.transactionalIdDenied,
                                           errorMessage: "not authorized to describe transactional id \(request.key)", nodeId: -1, host: "", port: -1)
        }
        // Cluster mode: no transaction coordinator (its state is not replicated), said in the
        // answer's message; a client keeps asking until its own timeout.
        if request.keyType == 1, let reason = broker.transactions.refusalReason {
            broker.events.transactionRefused(transactionalId: request.key, client: call.clientHost, api: call.api.name, reason: reason)
            return FindCoordinatorResponse(errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue, errorMessage: reason,
                                           nodeId: -1, host: "", port: -1)
        }
        // Cluster mode: a group's coordinator is the leader of its partition of the offsets
        // topic, told with its address on this listener's kind.
        if request.keyType == 0, broker.groupOwnership != nil, let cluster = broker.clusterAdministration {
            switch broker.groupCoordinatorNode(for: request.key) {
            case .failure(let error):
                return FindCoordinatorResponse(errorCode: KafkaErrorCode(error.code).rawValue, errorMessage: error.message,
                                               nodeId: -1, host: "", port: -1)
            case .success(let node):
                guard let address = cluster.metadataView().brokers(for: config.securityProtocol.rawValue).first(where: { $0.nodeId == node })?.address else {
                    return FindCoordinatorResponse(errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue,
                                                   errorMessage: "the coordinator, broker \(node), has no \(config.securityProtocol.rawValue) listener registered",
                                                   nodeId: -1, host: "", port: -1)
                }
                return FindCoordinatorResponse(errorCode: 0, errorMessage: nil, nodeId: node, host: address.host, port: address.port)
            }
        }
        return FindCoordinatorResponse(errorCode: 0, errorMessage: nil, nodeId: config.nodeId, host: advertisedHost, port: advertisedPort)
    }
}

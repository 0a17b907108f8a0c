import NIOCore
import SpoolBroker

// Metadata and DescribeCluster in cluster mode: what etcd says (live brokers, with the addresses
// of the listener kind the client came in on, controller,
// each partition's leader, epoch, replicas, ISR), as this broker last learnt it.
extension KafkaAPIs {
    func clusterMetadata(names: [String]?, autoCreate: Bool, cluster: any ClusterAdministration,
                         visible: (String) -> Bool = { _ in true }, creatable: (String) -> Bool = { _ in true }) async throws -> MetadataResponse {
        var view = cluster.metadataView()
        // Authorization: see `metadata` (hidden from a listing, TOPIC_AUTHORIZATION_FAILED when named).
        let shown = names.map { $0.filter(visible) }
        var denied = Set((names ?? []).filter { !Set(shown ?? []).contains($0) })
        if let names = shown, autoCreate {
            for name in names where view.topics[name] == nil && Broker.isValidTopicName(name) {
                guard creatable(name) else {
                    denied.insert(name)
                    continue
                }
                do {
                    _ = try await broker.createTopic(name, partitions: nil)
                } catch let error as BrokerError where error.code == .topicExists {
                    // Created by a concurrent request.
                } catch {
                    continue // answered as unknown below
                }
            }
            view = cluster.metadataView()
        }
        let topics = (names ?? view.topics.keys.sorted().filter(visible)).map { name -> MetadataResponse.Topic in
            if denied.contains(name) { return .init(errorCode: Self.topicDenied, name: name) }
            guard let topic = view.topics[name] else {
                let code: KafkaErrorCode = Broker.isValidTopicName(name) ? .unknownTopicOrPartition : .invalidTopicException
                return .init(errorCode: code.rawValue, name: name)
            }
            return .init(errorCode: 0, name: name, isInternal: name == ReplicatedGroupOffsets.topic, partitions: topic.partitions.enumerated().map { p, state in
                let route = view.route(state)
                return MetadataResponse.Topic.Partition(
                    errorCode: route.leader >= 0 ? 0 : KafkaErrorCode.leaderNotAvailable.rawValue, partitionIndex: Int32(p),
                    leaderId: route.leader, leaderEpoch: route.leaderEpoch,
                    replicaNodes: route.replicas, isrNodes: route.isr, offlineReplicas: route.offlineReplicas)
            })
        }
        return MetadataResponse(
            brokers: view.brokers(for: config.securityProtocol.rawValue).map {
                .init(nodeId: $0.nodeId, host: $0.address.host, port: $0.address.port, rack: nil)
            },
            clusterId: config.clusterId, controllerId: view.controllerId, topics: topics)
    }
}

extension KafkaAPIs {
    /// DescribeCluster (API 60): the live brokers and the controller (this broker alone in single-node mode).
    func describeCluster(_ request: DescribeClusterRequest, _ call: KafkaCall) -> DescribeClusterResponse {
        guard request.endpointType == 1 else {
            return DescribeClusterResponse(
                errorCode: KafkaErrorCode.mismatchedEndpointType.rawValue, errorMessage: "Spool has only broker endpoints (type 1)",
                endpointType: request.endpointType, clusterId: config.clusterId)
        }
        guard mayOnCluster(call, .describe) else {
            return DescribeClusterResponse(errorCode: Self.clusterDenied, errorMessage: "not authorized to describe the cluster",
                                           endpointType: request.endpointType, clusterId: config.clusterId)
        }
        guard let cluster = broker.clusterAdministration else {
            let me = brokerEntry
            return DescribeClusterResponse(clusterId: config.clusterId, controllerId: me.nodeId,
                                           brokers: [.init(brokerId: me.nodeId, host: me.host, port: me.port)])
        }
        let view = cluster.metadataView()
        return DescribeClusterResponse(clusterId: config.clusterId, controllerId: view.controllerId,
                                       brokers: view.brokers(for: config.securityProtocol.rawValue).map {
                                           .init(brokerId: $0.nodeId, host: $0.address.host, port: $0.address.port)
                                       })
    }
}

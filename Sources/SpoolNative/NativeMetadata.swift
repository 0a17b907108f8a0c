import SpoolBroker
import SpoolProtocol

/// The native Metadata call (method 26): the live brokers and each partition's leader,
/// leader epoch, replicas and ISR, for clients that route their data calls to leaders.
/// In cluster mode it answers from the view Kafka's Metadata uses
/// (`ClusterAdministration.metadataView`, `ClusterMetadataView.route`); a single broker
/// answers itself as the only node, leading every partition at epoch 0.
enum NativeMetadata {
    /// The answer to `request` on `broker`; `localAddress` is the listener's address the
    /// call came in on (a single broker's own entry).
    static func answer(_ request: Spool_V1_MetadataRequest, broker: Broker, localAddress: String) -> Spool_V1_MetadataResponse {
        var response = Spool_V1_MetadataResponse()
        response.nodeID = broker.config.nodeId ?? 0
        guard let cluster = broker.clusterAdministration else {
            response.controllerID = response.nodeID
            var me = Spool_V1_BrokerNode()
            me.nodeID = response.nodeID
            me.nativeAddress = localAddress
            response.brokers = [me]
            let names = request.topics.isEmpty ? broker.listTopics().map(\.name) : request.topics
            response.topics = names.map { name in
                guard let count = broker.partitionCount(of: name) else { return missing(name) }
                return topic(name, (0..<count).map { p in
                    partition(p, ClusterMetadataView.PartitionRoute(
                        leader: response.nodeID, leaderEpoch: 0, replicas: [response.nodeID], isr: [response.nodeID], offlineReplicas: []))
                })
            }
            return response
        }
        let view = cluster.metadataView()
        response.clustered = true
        response.controllerID = view.controllerId
        response.brokers = view.brokers.map { b in
            var node = Spool_V1_BrokerNode()
            node.nodeID = b.nodeId
            node.nativeAddress = b.nativeAddress
            return node
        }
        let names = request.topics.isEmpty ? view.topics.keys.sorted() : request.topics
        response.topics = names.map { name in
            guard let t = view.topics[name] else { return missing(name) }
            return topic(name, t.partitions.enumerated().map { p, state in partition(Int32(p), view.route(state)) })
        }
        return response
    }

    private static func missing(_ name: String) -> Spool_V1_TopicMetadata {
        var t = Spool_V1_TopicMetadata()
        t.name = name
        t.code = .notFound
        t.message = Broker.isValidTopicName(name) ? "topic \(name) does not exist" : "invalid topic name \(name)"
        return t
    }

    private static func topic(_ name: String, _ partitions: [Spool_V1_PartitionMetadata]) -> Spool_V1_TopicMetadata {
        var t = Spool_V1_TopicMetadata()
        t.name = name
        t.partitions = partitions
        return t
    }

    private static func partition(_ index: Int32, _ route: ClusterMetadataView.PartitionRoute) -> Spool_V1_PartitionMetadata {
        var p = Spool_V1_PartitionMetadata()
        p.partition = index
        if route.leader < 0 {
            p.code = .unavailable
        }
        p.leader = route.leader
        p.leaderEpoch = route.leaderEpoch
        p.replicas = route.replicas
        p.isr = route.isr
        p.offlineReplicas = route.offlineReplicas
        return p
    }
}

import NIOCore
import SpoolBroker
import SpoolRecords

// ElectLeaders (43), AlterPartitionReassignments (45), ListPartitionReassignments (46): operating
// a cluster. In cluster mode they go to `ClusterAdministration` (straight to etcd by
// compare-and-swap, from whichever broker is asked); a single-node broker leads every partition
// on itself already. ALTER on the cluster for the first two, DESCRIBE for the listing (Kafka's).
extension KafkaAPIs {
    static func code(_ failure: ClusterPartitionOutcome.Failure?) -> Int16 {
        let code: KafkaErrorCode
        switch failure {
        case nil: code = .none
        case .unknownTopicOrPartition: code = .unknownTopicOrPartition
        case .electionNotNeeded: code = .electionNotNeeded
        case .preferredLeaderNotAvailable: code = .preferredLeaderNotAvailable
        case .eligibleLeadersNotAvailable: code = .eligibleLeadersNotAvailable
        case .invalidReplicaAssignment: code = .invalidReplicaAssignment
        case .noReassignmentInProgress: code = .noReassignmentInProgress
        case .clusterUnavailable: code = .requestTimedOut
        }
        return code.rawValue
    }

    /// Groups per-partition outcomes by topic, in first-seen order.
    static func byTopic(_ outcomes: [ClusterPartitionOutcome]) -> [(topic: String, outcomes: [ClusterPartitionOutcome])] {
        var order: [String] = []
        var grouped: [String: [ClusterPartitionOutcome]] = [:]
        for o in outcomes {
            if grouped[o.partition.topic] == nil { order.append(o.partition.topic) }
            grouped[o.partition.topic, default: []].append(o)
        }
        return order.map { ($0, grouped[$0]!) }
    }

    /// A single-node broker's answer for `tp`: unknown, or `ifExists`.
    func localOutcome(_ tp: TopicPartition, ifExists failure: ClusterPartitionOutcome.Failure?, message: String?) -> ClusterPartitionOutcome {
        guard let count = try? broker.describeTopic(tp.topic).partitions.count, tp.partition >= 0, tp.partition < count else {
            return .init(tp, failure: .unknownTopicOrPartition, message: "\(tp) does not exist")
        }
        return .init(tp, failure: failure, message: message)
    }

    func electLeaders(_ request: ElectLeadersRequest, _ call: KafkaCall) -> EventLoopFuture<ElectLeadersResponse> {
        let partitions = request.topicPartitions.map { $0.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } } }
        guard mayOnCluster(call, .alter) else {
            return call.eventLoop.makeSucceededFuture(ElectLeadersResponse(
                errorCode: Self.clusterDenied,
                replicaElectionResults: Self.byTopic((partitions ?? []).map { .init($0) }).map { group in
                    .init(topic: group.topic, partitionResult: group.outcomes.map {
                        .init(partitionId: $0.partition.partition, errorCode: Self.clusterDenied, errorMessage: "not authorized to alter the cluster")
                    })
                }))
        }
        guard let type = ClusterElectionType(rawValue: request.electionType) else {
            return call.eventLoop.makeSucceededFuture(ElectLeadersResponse(errorCode: KafkaErrorCode.invalidRequest.rawValue))
        }
        return call.eventLoop.makeFutureWithTask {
            let outcomes: [ClusterPartitionOutcome]
            if let cluster = self.broker.clusterAdministration {
                outcomes = await cluster.electLeaders(type, partitions: partitions)
            } else {
                outcomes = (partitions ?? []).map { self.localOutcome($0, ifExists: .electionNotNeeded, message: "a single-node broker leads every partition") }
            }
            return ElectLeadersResponse(replicaElectionResults: Self.byTopic(outcomes).map { group in
                .init(topic: group.topic, partitionResult: group.outcomes.map {
                    .init(partitionId: $0.partition.partition, errorCode: Self.code($0.failure), errorMessage: $0.message)
                })
            })
        }
    }

    func alterPartitionReassignments(_ request: AlterPartitionReassignmentsRequest, _ call: KafkaCall) -> EventLoopFuture<AlterPartitionReassignmentsResponse> {
        guard mayOnCluster(call, .alter) else {
            return call.eventLoop.makeSucceededFuture(AlterPartitionReassignmentsResponse(
                errorCode: Self.clusterDenied, errorMessage: "not authorized to alter the cluster"))
        }
        let changes = request.topics.flatMap { t in t.partitions.map { (partition: TopicPartition(t.name, $0.partitionIndex), replicas: $0.replicas) } }
        let node = config.nodeId
        return call.eventLoop.makeFutureWithTask {
            let outcomes: [ClusterPartitionOutcome]
            if let cluster = self.broker.clusterAdministration {
                outcomes = await cluster.alterReassignments(changes)
            } else {
                outcomes = changes.map { change in
                    switch change.replicas {
                    case nil: return self.localOutcome(change.partition, ifExists: .noReassignmentInProgress, message: "nothing is being reassigned")
                    case [node]?: return self.localOutcome(change.partition, ifExists: nil, message: nil)
                    case _?: return self.localOutcome(change.partition, ifExists: .invalidReplicaAssignment,
                                                      message: "a single-node broker holds each partition on broker \(node) alone")
                    }
                }
            }
            return AlterPartitionReassignmentsResponse(responses: Self.byTopic(outcomes).map { group in
                .init(name: group.topic, partitions: group.outcomes.map {
                    .init(partitionIndex: $0.partition.partition, errorCode: Self.code($0.failure), errorMessage: $0.message)
                })
            })
        }
    }

    func listPartitionReassignments(_ request: ListPartitionReassignmentsRequest, _ call: KafkaCall) -> ListPartitionReassignmentsResponse {
        guard mayOnCluster(call, .describe) else {
            return ListPartitionReassignmentsResponse(errorCode: Self.clusterDenied, errorMessage: "not authorized to describe the cluster")
        }
        let partitions = request.topics.map { $0.flatMap { t in t.partitionIndexes.map { TopicPartition(t.name, $0) } } }
        let statuses = broker.clusterAdministration?.listReassignments(partitions) ?? []
        var order: [String] = []
        var grouped: [String: [ClusterReassignmentStatus]] = [:]
        for s in statuses {
            if grouped[s.partition.topic] == nil { order.append(s.partition.topic) }
            grouped[s.partition.topic, default: []].append(s)
        }
        return ListPartitionReassignmentsResponse(topics: order.map { name in
            .init(name: name, partitions: grouped[name]!.map {
                .init(partitionIndex: $0.partition.partition, replicas: $0.replicas, addingReplicas: $0.adding, removingReplicas: $0.removing)
            })
        })
    }
}

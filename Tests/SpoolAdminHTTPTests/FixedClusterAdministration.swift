import SpoolBroker
import SpoolRecords

/// A cluster frozen in one `ClusterMetadataView`, for views built from it (`GET /v1/cluster`):
/// it answers what it holds and refuses every change.
struct FixedClusterAdministration: ClusterAdministration {
    let view: ClusterMetadataView

    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int?, assignment: [[Int32]]?, configs: [String: String]) async throws -> ClusterTopicDescription {
        throw BrokerError(.clusterUnavailable, "a fixed cluster takes no changes")
    }
    func deleteTopic(_ name: String) async throws { throw BrokerError(.clusterUnavailable, "a fixed cluster takes no changes") }
    func addPartitions(topic: String, totalCount: Int32, assignment: [[Int32]]?) async throws { throw BrokerError(.clusterUnavailable, "a fixed cluster takes no changes") }
    func replaceOverrides(_ name: String, validateOnly: Bool, _ change: @escaping @Sendable ([String: String]) -> [String: String]) async throws {
        throw BrokerError(.clusterUnavailable, "a fixed cluster takes no changes")
    }
    func describeTopic(_ name: String) async throws -> ClusterTopicDescription? { view.topics[name] }
    func topicNames() -> [String] { view.topics.keys.sorted() }
    func metadataView() -> ClusterMetadataView { view }
    func electLeaders(_ type: ClusterElectionType, partitions: [TopicPartition]?) async -> [ClusterPartitionOutcome] { [] }
    func alterReassignments(_ changes: [(partition: TopicPartition, replicas: [Int32]?)]) async -> [ClusterPartitionOutcome] { [] }
    func listReassignments(_ partitions: [TopicPartition]?) -> [ClusterReassignmentStatus] { [] }
}

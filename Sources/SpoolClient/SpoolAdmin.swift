import NIOCore
import SpoolProtocol

/// Topic, offset and group administration over a connection. With a `BrokerRouter`,
/// `listOffset` asks the partition's leader (refreshing the metadata and retrying when a
/// broker says it does not lead it), group calls go to the group's coordinator (found with
/// FindCoordinator, retried when it moves), and `listAllGroups` asks every broker; every
/// other call goes to the bootstrap broker. Without a router everything goes to `connection`.
public struct SpoolAdmin: Sendable {
    public let connection: SpoolConnection
    public let router: BrokerRouter?
    /// Most attempts of a leader-bound call (each after a metadata refresh).
    public static let leaderAttemptsMax = 10

    public init(_ connection: SpoolConnection) {
        self.connection = connection
        self.router = nil
    }

    public init(router: BrokerRouter) {
        self.connection = router.bootstrap
        self.router = router
    }

    /// Creates a topic (`partitions` 0: the broker's default; `replicationFactor` 0: the
    /// cluster's default, 1 on a single broker, which refuses more).
    @discardableResult
    public func createTopic(_ name: String, partitions: Int32 = 1, replicationFactor: Int32 = 0,
                            configs: [String: String] = [:]) async throws -> Spool_V1_TopicDescription {
        var request = Spool_V1_CreateTopicRequest()
        request.name = name
        request.partitions = partitions
        request.replicationFactor = replicationFactor
        request.configs = configs.sorted { $0.key < $1.key }.map { entry($0.key, $0.value) }
        let response: Spool_V1_CreateTopicResponse = try await connection.call(.createTopic, request)
        return response.topic
    }

    public func deleteTopic(_ name: String) async throws {
        var request = Spool_V1_DeleteTopicRequest()
        request.name = name
        let _: Spool_V1_DeleteTopicResponse = try await connection.call(.deleteTopic, request)
    }

    /// Brings a topic's stopped partitions back (re-opened and re-checked by recovery);
    /// returns the partitions that were stopped, and the topic as it is now.
    public func recoverTopic(_ name: String) async throws -> (recovered: [Int32], topic: Spool_V1_TopicDescription) {
        var request = Spool_V1_RecoverTopicRequest()
        request.name = name
        let response: Spool_V1_RecoverTopicResponse = try await connection.call(.recoverTopic, request)
        return (response.recovered, response.topic)
    }

    public func listTopics() async throws -> [Spool_V1_TopicSummary] {
        let response: Spool_V1_ListTopicsResponse = try await connection.call(.listTopics, Spool_V1_ListTopicsRequest())
        return response.topics
    }

    public func describeTopic(_ name: String) async throws -> Spool_V1_TopicDescription {
        var request = Spool_V1_DescribeTopicRequest()
        request.name = name
        let response: Spool_V1_DescribeTopicResponse = try await connection.call(.describeTopic, request)
        return response.topic
    }

    @discardableResult
    public func alterTopic(_ name: String, set: [String: String]) async throws -> Spool_V1_TopicDescription {
        var request = Spool_V1_AlterTopicConfigRequest()
        request.name = name
        request.set = set.sorted { $0.key < $1.key }.map { entry($0.key, $0.value) }
        let response: Spool_V1_AlterTopicConfigResponse = try await connection.call(.alterTopicConfig, request)
        return response.topic
    }

    /// Grows a topic to `partitions` partitions in all (Kafka's CreatePartitions; never shrinks).
    @discardableResult
    public func createPartitions(_ name: String, totalCount partitions: Int32) async throws -> Spool_V1_TopicDescription {
        var request = Spool_V1_CreatePartitionsRequest()
        request.name = name
        request.partitions = partitions
        let response: Spool_V1_CreatePartitionsResponse = try await connection.call(.createPartitions, request)
        return response.topic
    }

    /// Where a position points.
    public enum OffsetQuery: Sendable {
        case earliest, latest
        /// The first offset with a record timestamp ≥ this (Unix milliseconds); -1 if none.
        case timestamp(Int64)
    }

    public func listOffset(topic: String, partition: Int32, _ query: OffsetQuery) async throws -> Int64 {
        var p = Spool_V1_ListOffsetsPartition()
        p.topic = topic
        p.partition = partition
        switch query {
        case .earliest: p.spec = .earliest
        case .latest: p.spec = .latest
        case .timestamp(let ts):
            p.spec = .timestamp
            p.timestamp = ts
        }
        var request = Spool_V1_ListOffsetsRequest()
        request.partitions = [p]
        guard let router else { return try await Self.listOffset(request, on: connection) }
        let tp = TopicPartition(topic, partition)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await Self.listOffset(request, on: try await router.connection(toLeaderOf: tp))
            } catch where attempt < Self.leaderAttemptsMax && isRetriable(error) {
                // Not the leader (any more), or its connection broke: ask where it is now.
                _ = try? await router.refresh(topics: [topic])
            }
        }
    }

    private static func listOffset(_ request: Spool_V1_ListOffsetsRequest, on connection: SpoolConnection) async throws -> Int64 {
        let response: Spool_V1_ListOffsetsResponse = try await connection.call(.listOffsets, request)
        guard let result = response.results.first else { throw SpoolStatusError(.internal, "empty ListOffsets response") }
        guard result.code == .ok else { throw SpoolStatusError(result.code, result.message) }
        return result.offset
    }

    // MARK: Groups (at the group's coordinator, with a router: BrokerRouter+Coordinators.swift)

    /// Runs a group call at `group`'s coordinator (finding it, and retrying as the router's
    /// `groupCall` does), or, without a router, on `connection`.
    private func atCoordinator<R>(_ group: String, groupError: (R) -> Spool_V1_GroupError = { _ in .none },
                                  _ body: (SpoolConnection) async throws -> R) async throws -> R {
        guard let router else { return try await body(connection) }
        return try await router.groupCall(group, groupError: groupError, body)
    }

    /// Which broker coordinates `group` (FindCoordinator): its node id and native address.
    public func findCoordinator(group: String) async throws -> (node: Int32, address: String) {
        var request = Spool_V1_FindCoordinatorRequest()
        request.group = group
        let response: Spool_V1_FindCoordinatorResponse
        if let router {
            response = try await router.findCoordinator(of: group)
        } else {
            response = try await connection.call(.findCoordinator, request)
        }
        guard response.error == .none else {
            throw SpoolStatusError(.unavailable, "no coordinator of group \(group): \(response.error): \(response.message)")
        }
        return (response.nodeID, response.address)
    }

    /// Commits offsets for `group` outside any generation (the group must have no members).
    public func commit(group: String, offsets: [(topic: String, partition: Int32, offset: Int64)]) async throws {
        var request = Spool_V1_CommitOffsetsRequest()
        request.group = group
        request.offsets = Spool_V1_GroupOffset.list(offsets)
        let _: Spool_V1_CommitOffsetsResponse = try await atCoordinator(group) { try await $0.call(.commitOffsets, request) }
    }

    public func committedOffsets(group: String, topics: [String] = []) async throws -> [Spool_V1_GroupOffset] {
        var request = Spool_V1_FetchOffsetsRequest()
        request.group = group
        request.topics = topics
        let response: Spool_V1_FetchOffsetsResponse = try await atCoordinator(group) { try await $0.call(.fetchOffsets, request) }
        return response.offsets
    }

    /// `group`'s state, generation and members (DescribeGroups at its coordinator).
    public func describeGroup(_ group: String) async throws -> Spool_V1_GroupDescription {
        var request = Spool_V1_DescribeGroupsRequest()
        request.groups = [group]
        let response: Spool_V1_DescribeGroupsResponse = try await atCoordinator(group, groupError: { $0.groups.first?.error ?? .none }) {
            try await $0.call(.describeGroups, request)
        }
        guard let description = response.groups.first else { throw SpoolStatusError(.internal, "empty DescribeGroups response") }
        return description
    }

    /// The groups of every coordinator, and the brokers that did not answer.
    public struct GroupListing: Sendable, Equatable {
        /// Sorted, each once.
        public var groups: [String]
        /// Brokers (node id → why) whose groups are missing from `groups`.
        public var unanswered: [Int32: String]
    }

    /// The groups with members or committed offsets. A broker lists only the groups it
    /// coordinates, so in a cluster every live broker the metadata names is asked and the
    /// answers merged; `unanswered` names those that failed. Throws when none answered.
    public func listAllGroups() async throws -> GroupListing {
        guard let router, let metadata = router.metadata, metadata.clustered, !metadata.brokers.isEmpty else {
            return GroupListing(groups: try await Self.listGroups(on: connection), unanswered: [:])
        }
        var groups = Set<String>()
        var unanswered: [Int32: String] = [:]
        var firstError: Error?
        for node in metadata.brokers.keys.sorted() {
            do {
                guard let c = router.connection(toNode: node) else { throw SpoolStatusError(.unavailable, "broker \(node) is not live") }
                groups.formUnion(try await Self.listGroups(on: c))
            } catch {
                firstError = firstError ?? error
                unanswered[node] = "\(error)"
            }
        }
        if unanswered.count == metadata.brokers.count, let firstError { throw firstError }
        return GroupListing(groups: groups.sorted(), unanswered: unanswered)
    }

    /// The groups of the broker asked (in a cluster, only those it coordinates: `listAllGroups` asks them all).
    public func listGroups() async throws -> [String] {
        try await Self.listGroups(on: connection)
    }

    private static func listGroups(on connection: SpoolConnection) async throws -> [String] {
        let response: Spool_V1_ListGroupsResponse = try await connection.call(.listGroups, Spool_V1_ListGroupsRequest())
        return response.groups
    }
}

func entry(_ key: String, _ value: String) -> Spool_V1_ConfigEntry {
    var e = Spool_V1_ConfigEntry()
    e.key = key
    e.value = value
    return e
}

import SpoolBroker
import SpoolCoordination
import SpoolEtcd
import SpoolRecords

/// Operating a cluster on demand, straight on etcd: leader elections (Kafka's ElectLeaders) and
/// partition reassignments (AlterPartitionReassignments, ListPartitionReassignments). Any broker
/// answers them (`ClusterReplicaManager`), and `spool cluster elect-leaders` / `spool topic
/// reassign` run them from the command line, all the same way: read the records, decide with
/// the pure `LeaderDecisions` / `ReassignmentDecisions`, write by compare-and-swap on the mod
/// revisions read — the path the controller writes by — and on a conflict re-read and
/// re-decide (at most `casAttempts` times). The controller needs no message: it completes
/// reassignments from the records it watches.
public struct ClusterOperations: Sendable {
    public let client: EtcdClient
    public let keys: ClusterKeys
    private let topicStore: TopicStore
    private let stateStore: PartitionStateStore
    /// Called once per leader change written (the caller's election counter).
    private let leaderChanged: @Sendable () -> Void

    /// How many times one partition's change is re-decided after losing a compare-and-swap.
    public static let casAttempts = 5

    public init(client: EtcdClient, keys: ClusterKeys, leaderChanged: @escaping @Sendable () -> Void = {}) {
        self.client = client
        self.keys = keys
        topicStore = TopicStore(client: client, keys: keys)
        stateStore = PartitionStateStore(client: client, keys: keys)
        self.leaderChanged = leaderChanged
    }

    /// The registered brokers' ids now.
    func liveBrokers() async throws -> Set<Int32> {
        Set(try await client.range(.prefix(keys.brokersPrefix)).kvs.compactMap { Int32($0.key.dropFirst(keys.brokersPrefix.count)) })
    }

    /// How many partitions `topic` has, nil if there is no such topic.
    public func partitionCount(_ topic: String) async throws -> Int32? {
        try await topicStore.read(topic)?.record.partitions
    }

    // MARK: Elections

    /// Elects leaders of `partitions` (nil: every partition of every topic; then partitions
    /// whose election is not needed are left out of the answer, as Kafka does).
    public func electLeaders(_ type: LeaderElectionType, partitions: [TopicPartition]?) async -> [ClusterPartitionOutcome] {
        let all: (topics: [String: VersionedTopicRecord], states: [TopicPartitionKey: VersionedPartitionState], revision: Int64)
        let live: Set<Int32>
        do {
            all = try await topicStore.readAll()
            live = try await liveBrokers()
        } catch {
            return (partitions ?? []).map { .init($0, failure: .clusterUnavailable, message: "etcd did not answer: \(error)") }
        }
        let wanted = partitions ?? all.topics.keys.sorted().flatMap { name in
            (0..<all.topics[name]!.record.partitions).map { TopicPartition(name, $0) }
        }
        var outcomes: [ClusterPartitionOutcome] = []
        for tp in wanted {
            let outcome = await elect(type, tp, record: all.topics[tp.topic]?.record,
                                      state: all.states[TopicPartitionKey(topic: tp.topic, partition: tp.partition)], live: live)
            if partitions == nil && outcome.failure == .electionNotNeeded { continue }
            outcomes.append(outcome)
        }
        return outcomes
    }

    private func elect(_ type: LeaderElectionType, _ tp: TopicPartition, record: TopicRecord?, state: VersionedPartitionState?,
                       live: Set<Int32>) async -> ClusterPartitionOutcome {
        guard let record, record.assignment.indices.contains(Int(tp.partition)), var state else {
            return .init(tp, failure: .unknownTopicOrPartition, message: "\(tp) does not exist")
        }
        let replicas = record.assignment[Int(tp.partition)]
        for _ in 0..<Self.casAttempts {
            let next: PartitionState
            switch LeaderDecisions.elect(type, replicas: replicas, state: state.state, live: live) {
            case .success(let decided): next = decided
            case .failure(.notNeeded):
                return .init(tp, failure: .electionNotNeeded, message: "leader \(state.state.leader) of \(tp) needs no election")
            case .failure(.preferredNotAvailable):
                return .init(tp, failure: .preferredLeaderNotAvailable,
                             message: "preferred replica \(replicas.first ?? -1) of \(tp) is not alive or not in the ISR \(state.state.isr)")
            case .failure(.eligibleNotAvailable):
                return .init(tp, failure: .eligibleLeadersNotAvailable, message: "no live replica of \(tp) among \(replicas)")
            }
            do {
                switch try await stateStore.compareAndSwap(topic: tp.topic, partition: tp.partition, expectedModRevision: state.modRevision, state: next) {
                case .success:
                    leaderChanged()
                    return .init(tp)
                case .conflict(let current?):
                    state = current
                case .conflict(nil):
                    return .init(tp, failure: .unknownTopicOrPartition, message: "\(tp) was deleted")
                }
            } catch {
                return .init(tp, failure: .clusterUnavailable, message: "etcd did not answer: \(error)")
            }
        }
        return .init(tp, failure: .clusterUnavailable, message: "\(tp) kept changing under \(Self.casAttempts) attempts")
    }

    // MARK: Reassignments

    /// Starts (replicas), replaces, or cancels (nil) reassignments, one transaction per partition.
    public func alterReassignments(_ changes: [(partition: TopicPartition, replicas: [Int32]?)]) async -> [ClusterPartitionOutcome] {
        var outcomes: [ClusterPartitionOutcome] = []
        for change in changes { outcomes.append(await reassign(change.partition, to: change.replicas)) }
        return outcomes
    }

    private func reassign(_ tp: TopicPartition, to target: [Int32]?) async -> ClusterPartitionOutcome {
        do {
            for _ in 0..<Self.casAttempts {
                guard let topic = try await topicStore.read(tp.topic),
                      let state = try await stateStore.read(topic: tp.topic, partition: tp.partition) else {
                    return .init(tp, failure: .unknownTopicOrPartition, message: "\(tp) does not exist")
                }
                let live = try await liveBrokers()
                let decided: (TopicRecord, PartitionState)?
                do throws(ReassignmentRefusal) {
                    if let target {
                        decided = try ReassignmentDecisions.start(topic.record, partition: tp.partition, target: target, state: state.state, live: live)
                    } else {
                        decided = try ReassignmentDecisions.cancel(topic.record, partition: tp.partition, state: state.state, live: live)
                    }
                } catch {
                    switch error {
                    case .unknownPartition: return .init(tp, failure: .unknownTopicOrPartition, message: "\(tp) does not exist")
                    case .invalidAssignment(let why): return .init(tp, failure: .invalidReplicaAssignment, message: why)
                    case .noneInProgress: return .init(tp, failure: .noReassignmentInProgress, message: "\(tp) is not being reassigned")
                    }
                }
                guard let (record, next) = decided else { return .init(tp) }
                if case .written = try await topicStore.update(tp.topic, from: topic, to: record, states: [tp.partition: (state, next)]) {
                    if next.leader != state.state.leader { leaderChanged() }
                    return .init(tp)
                }
            }
            return .init(tp, failure: .clusterUnavailable, message: "\(tp) kept changing under \(Self.casAttempts) attempts")
        } catch {
            return .init(tp, failure: .clusterUnavailable, message: "etcd did not answer: \(error)")
        }
    }

    /// The reassignments in progress, read from etcd.
    public func listReassignments(_ partitions: [TopicPartition]?) async throws -> [ClusterReassignmentStatus] {
        Self.reassignments(in: try await topicStore.readAll().topics, partitions)
    }

    /// The reassignments in progress among `topics` (of `partitions`, nil: all), by topic then partition.
    public static func reassignments(in topics: [String: VersionedTopicRecord], _ partitions: [TopicPartition]?) -> [ClusterReassignmentStatus] {
        let wanted = partitions.map(Set.init)
        var statuses: [ClusterReassignmentStatus] = []
        for name in topics.keys.sorted() {
            let record = topics[name]!.record
            for (key, r) in record.reassignments {
                guard let p = Int32(key), record.assignment.indices.contains(Int(p)) else { continue }
                let tp = TopicPartition(name, p)
                if let wanted, !wanted.contains(tp) { continue }
                statuses.append(.init(partition: tp, replicas: record.assignment[Int(p)], adding: r.adding, removing: r.removing))
            }
        }
        return statuses.sorted { ($0.partition.topic, $0.partition.partition) < ($1.partition.topic, $1.partition.partition) }
    }
}

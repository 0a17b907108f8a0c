import SpoolEtcd

/// Reads and writes topic records (`topics/<topic>`) together with their partitions' states, each
/// change in one etcd transaction: create-if-absent (a topic and all its partitions' first states),
/// compare-and-swap on the record's mod revision (grow, alter configs), and delete (the record
/// and everything under it).
public struct TopicStore: Sendable {
    public let client: EtcdClient
    public let keys: ClusterKeys

    /// What a write found.
    public enum Outcome: Sendable, Hashable {
        case written(revision: Int64)
        /// Create: the topic exists already. CAS / delete: the record changed or is gone.
        case conflict
    }

    public init(client: EtcdClient, keys: ClusterKeys) {
        self.client = client
        self.keys = keys
    }

    /// The record now, nil if there is no such topic.
    public func read(_ name: String) async throws -> VersionedTopicRecord? {
        guard let kv = try await client.get(try keys.topic(name)) else { return nil }
        return VersionedTopicRecord(name: name, record: try JSONValue.decode(TopicRecord.self, from: kv), modRevision: kv.modRevision)
    }

    /// Every topic and every partition state, in one linearizable read, and its revision
    /// (watch from revision + 1 to follow on).
    public func readAll() async throws -> (topics: [String: VersionedTopicRecord], states: [TopicPartitionKey: VersionedPartitionState], revision: Int64) {
        let range = try await client.range(.prefix(keys.topicsPrefix))
        var topics: [String: VersionedTopicRecord] = [:]
        var states: [TopicPartitionKey: VersionedPartitionState] = [:]
        for kv in range.kvs {
            if let name = keys.topicName(ofRecordKey: kv.key) {
                topics[name] = VersionedTopicRecord(name: name, record: try JSONValue.decode(TopicRecord.self, from: kv), modRevision: kv.modRevision)
            } else if let (topic, partition) = keys.partition(ofStateKey: kv.key) {
                states[TopicPartitionKey(topic: topic, partition: partition)] = try PartitionStateStore.versioned(kv)
            }
        }
        return (topics, states, range.revision)
    }

    /// Creates the topic and its partitions' first states (`TopicRecord.initialState`) if there is
    /// no record of that name.
    public func create(_ name: String, _ record: TopicRecord) async throws -> Outcome {
        let key = try keys.topic(name)
        var puts: [EtcdOperation] = [.put(key, try JSONValue.encode(record))]
        for (p, replicas) in record.assignment.enumerated() {
            puts.append(.put(try keys.partitionState(topic: name, partition: Int32(p)), try JSONValue.encode(TopicRecord.initialState(replicas: replicas))))
        }
        let txn = try await client.txn(compare: [.createRevision(key, .equal, 0)], success: puts)
        return txn.succeeded ? .written(revision: txn.revision) : .conflict
    }

    /// Replaces the record if it is still at `expectedModRevision`; partitions beyond the old
    /// record's count get their first states in the same transaction.
    public func update(_ name: String, from old: VersionedTopicRecord, to record: TopicRecord) async throws -> Outcome {
        let key = try keys.topic(name)
        var puts: [EtcdOperation] = [.put(key, try JSONValue.encode(record))]
        var compares: [EtcdCompare] = [.modRevision(key, .equal, old.modRevision)]
        for p in old.record.assignment.count..<max(old.record.assignment.count, record.assignment.count) {
            let stateKey = try keys.partitionState(topic: name, partition: Int32(p))
            compares.append(.createRevision(stateKey, .equal, 0))
            puts.append(.put(stateKey, try JSONValue.encode(TopicRecord.initialState(replicas: record.assignment[p]))))
        }
        let txn = try await client.txn(compare: compares, success: puts)
        return txn.succeeded ? .written(revision: txn.revision) : .conflict
    }

    /// Replaces the record and some of its partitions' states in one transaction, if the record
    /// is still at `old.modRevision` and each state still at the mod revision it was read at
    /// (a reassignment changes both; `.conflict` when any moved).
    public func update(_ name: String, from old: VersionedTopicRecord, to record: TopicRecord,
                       states: [Int32: (from: VersionedPartitionState, to: PartitionState)]) async throws -> Outcome {
        let key = try keys.topic(name)
        var puts: [EtcdOperation] = [.put(key, try JSONValue.encode(record))]
        var compares: [EtcdCompare] = [.modRevision(key, .equal, old.modRevision)]
        for (partition, change) in states.sorted(by: { $0.key < $1.key }) {
            guard change.to.leaderEpoch >= 0, change.to.partitionEpoch >= 0, change.to.leader >= -1 else {
                throw EtcdError(.invalidArgument, "partition state \(change.to) has a negative epoch or leader below -1")
            }
            let stateKey = try keys.partitionState(topic: name, partition: partition)
            compares.append(.modRevision(stateKey, .equal, change.from.modRevision))
            puts.append(.put(stateKey, try JSONValue.encode(change.to)))
        }
        let txn = try await client.txn(compare: compares, success: puts)
        return txn.succeeded ? .written(revision: txn.revision) : .conflict
    }

    /// Deletes the topic record and every partition state under it. `.conflict` when there was no record.
    public func delete(_ name: String) async throws -> Outcome {
        let key = try keys.topic(name)
        let txn = try await client.txn(
            compare: [.createRevision(key, .greater, 0)],
            success: [.delete(.key(key)), .delete(.prefix(key + "/"))])
        return txn.succeeded ? .written(revision: txn.revision) : .conflict
    }
}

/// A topic and partition as a dictionary key (SpoolCoordination does not see SpoolRecords' `TopicPartition`).
public struct TopicPartitionKey: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public var description: String { "\(topic)-\(partition)" }
}

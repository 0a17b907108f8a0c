import Foundation
import SpoolEtcd

/// Everything a broker knows of its cluster from etcd: every key under `/spool/<cluster-id>/`
/// as last read or watched, and what they decode to (live brokers, controller, topic records,
/// partition states). Built from a range read and kept current by applying watch events in
/// order (`apply`); records that do not decode are skipped (and counted).
public struct ClusterSnapshot: Sendable {
    public let keys: ClusterKeys
    /// Live brokers by node id (the registration's key mod revision is its epoch).
    public private(set) var brokers: [Int32: BrokerRecord] = [:]
    /// The controller's node id and epoch (its key's create revision), nil while there is none.
    public private(set) var controller: (nodeId: Int32, epoch: Int64)?
    public private(set) var topics: [String: VersionedTopicRecord] = [:]
    public private(set) var states: [TopicPartitionKey: VersionedPartitionState] = [:]
    /// SCRAM credentials, ACLs and client quotas, by their keys (`security/...`).
    public private(set) var credentials: [String: CredentialRecord] = [:]
    public private(set) var acls: [String: AclRecord] = [:]
    public private(set) var quotas: [String: QuotaRecord] = [:]
    /// Counts changes to the three above (the cluster layer applies them when it moves).
    public private(set) var securityVersion = 0
    /// etcd's revision this snapshot is at.
    public private(set) var revision: Int64 = 0
    /// Records skipped because they did not decode.
    public private(set) var undecodable = 0

    public init(keys: ClusterKeys) { self.keys = keys }

    /// Replaces everything with a full read at `revision`.
    public mutating func reset(_ kvs: [EtcdKeyValue], revision: Int64) {
        brokers = [:]
        controller = nil
        topics = [:]
        states = [:]
        credentials = [:]
        acls = [:]
        quotas = [:]
        securityVersion += 1
        for kv in kvs { put(kv) }
        self.revision = revision
    }

    /// Applies watch events (in order).
    public mutating func apply(_ events: [EtcdWatchEvent], revision: Int64) {
        for event in events {
            switch event.kind {
            case .put: put(event.kv)
            case .delete: delete(event.kv.key)
            }
        }
        self.revision = max(self.revision, revision)
    }

    private mutating func put(_ kv: EtcdKeyValue) {
        let key = kv.key
        do {
            if key.hasPrefix(keys.brokersPrefix) {
                let record = try JSONValue.decode(BrokerRecord.self, from: kv)
                brokers[record.nodeId] = record
            } else if key == keys.controller {
                controller = (try JSONValue.decode(ControllerRecord.self, from: kv).nodeId, kv.createRevision)
            } else if let name = keys.topicName(ofRecordKey: key) {
                topics[name] = VersionedTopicRecord(name: name, record: try JSONValue.decode(TopicRecord.self, from: kv), modRevision: kv.modRevision)
            } else if let (topic, partition) = keys.partition(ofStateKey: key) {
                states[TopicPartitionKey(topic: topic, partition: partition)] = try PartitionStateStore.versioned(kv)
            } else if key.hasPrefix(keys.usersPrefix) {
                credentials[key] = try JSONValue.decode(CredentialRecord.self, from: kv)
                securityVersion += 1
            } else if key.hasPrefix(keys.aclsPrefix) {
                acls[key] = try JSONValue.decode(AclRecord.self, from: kv)
                securityVersion += 1
            } else if key.hasPrefix(keys.quotasPrefix) {
                quotas[key] = try JSONValue.decode(QuotaRecord.self, from: kv)
                securityVersion += 1
            }
        } catch {
            undecodable += 1
        }
    }

    private mutating func delete(_ key: String) {
        if key.hasPrefix(keys.brokersPrefix) {
            if let id = Int32(key.dropFirst(keys.brokersPrefix.count)) { brokers[id] = nil }
        } else if key == keys.controller {
            controller = nil
        } else if let name = keys.topicName(ofRecordKey: key) {
            topics[name] = nil
        } else if let (topic, partition) = keys.partition(ofStateKey: key) {
            states[TopicPartitionKey(topic: topic, partition: partition)] = nil
        } else if key.hasPrefix(keys.securityPrefix) {
            credentials[key] = nil
            acls[key] = nil
            quotas[key] = nil
            securityVersion += 1
        }
    }

    /// The live brokers' ids.
    public var liveBrokers: Set<Int32> { Set(brokers.keys) }

    /// Partitions with fewer in-sync replicas than assigned, and partitions without a leader.
    public var health: (underReplicated: Int, offline: Int) {
        var under = 0
        var offline = 0
        for (name, topic) in topics {
            for (p, replicas) in topic.record.assignment.enumerated() {
                guard let state = states[TopicPartitionKey(topic: name, partition: Int32(p))]?.state else { continue }
                let h = LeaderDecisions.health(replicas: replicas, state: state)
                if h.underReplicated { under += 1 }
                if h.offline { offline += 1 }
            }
        }
        return (under, offline)
    }
}

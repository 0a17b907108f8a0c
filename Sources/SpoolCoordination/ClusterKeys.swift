import SpoolEtcd

/// Where a Spool cluster keeps its state in etcd. Everything lives under `/spool/<cluster-id>/`
/// so that clusters can share one etcd:
///
/// | key | value | written by |
/// |---|---|---|
/// | `brokers/<node-id>` | `BrokerRecord` JSON, under the broker's lease | the broker (`BrokerRegistration`) |
/// | `controller` | `ControllerRecord` JSON, under the controller's lease | the elected broker (`ControllerElection`) |
/// | `topics/<topic>` | `TopicRecord` JSON: replica assignment per partition, config overrides | create-if-absent by the broker that received the create; grown / altered by CAS (`TopicStore`) |
/// | `topics/<topic>/partitions/<n>/state` | `PartitionState` JSON | created with the topic record; then compare-and-swap only (`PartitionStateStore`): the controller (leaders), the leader (ISR) |
/// | `security/users/<user>/<mechanism>` | `CredentialRecord` JSON: salt, iterations, stored and server keys (never a password) | put / deleted by the broker that received the change (`SecurityStore`) |
/// | `security/acls/<type>/<pattern>/<name>/<principal>/<host>/<operation>/<permission>` | `AclRecord` JSON | put / deleted by the broker that received the change |
/// | `security/quotas/<user part>/<client part>` | `QuotaRecord` JSON | put / deleted by the broker that received the change |
///
/// Names in security keys are percent-escaped (`escape`): every byte outside `[A-Za-z0-9_-]`
/// becomes `%XX`, so any user, principal or host is one path segment.
public struct ClusterKeys: Sendable, Hashable {
    public let clusterId: String

    /// `clusterId` must be non-empty and made of `[A-Za-z0-9._-]` (it is a path segment).
    public init(clusterId: String) throws {
        guard Self.isSegment(clusterId) else {
            throw EtcdError(.invalidArgument, "cluster id '\(clusterId)' is not [A-Za-z0-9._-]+")
        }
        self.clusterId = clusterId
    }

    static func isSegment(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." && text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }

    /// `/spool/<cluster-id>/`
    public var root: String { "/spool/\(clusterId)/" }
    /// `/spool/<cluster-id>/brokers/`: one key per live broker.
    public var brokersPrefix: String { root + "brokers/" }
    public func broker(_ nodeId: Int32) -> String { brokersPrefix + String(nodeId) }
    /// `/spool/<cluster-id>/controller`
    public var controller: String { root + "controller" }
    /// `/spool/<cluster-id>/topics/`
    public var topicsPrefix: String { root + "topics/" }
    /// `/spool/<cluster-id>/topics/<topic>`: the topic record.
    public func topic(_ topic: String) throws -> String {
        guard Self.isSegment(topic) else { throw EtcdError(.invalidArgument, "topic '\(topic)' is not [A-Za-z0-9._-]+") }
        return topicsPrefix + topic
    }
    /// The topic a key under `topicsPrefix` is the record of (nil for partition states and others).
    public func topicName(ofRecordKey key: String) -> String? {
        guard key.hasPrefix(topicsPrefix) else { return nil }
        let rest = String(key.dropFirst(topicsPrefix.count))
        return Self.isSegment(rest) ? rest : nil
    }
    /// The topic and partition a partition state key names (nil for other keys).
    public func partition(ofStateKey key: String) -> (topic: String, partition: Int32)? {
        guard key.hasPrefix(topicsPrefix), key.hasSuffix("/state") else { return nil }
        let parts = key.dropFirst(topicsPrefix.count).dropLast("/state".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "partitions", let n = Int32(parts[2]), n >= 0, Self.isSegment(String(parts[0])) else { return nil }
        return (String(parts[0]), n)
    }
    /// `/spool/<cluster-id>/topics/<topic>/partitions/`
    public func partitionsPrefix(topic: String) throws -> String {
        guard Self.isSegment(topic) else { throw EtcdError(.invalidArgument, "topic '\(topic)' is not [A-Za-z0-9._-]+") }
        return topicsPrefix + topic + "/partitions/"
    }
    /// `/spool/<cluster-id>/topics/<topic>/partitions/<n>/state`
    public func partitionState(topic: String, partition: Int32) throws -> String {
        guard partition >= 0 else { throw EtcdError(.invalidArgument, "partition \(partition) is negative") }
        return try partitionsPrefix(topic: topic) + String(partition) + "/state"
    }

    // MARK: Security

    /// `/spool/<cluster-id>/security/`
    public var securityPrefix: String { root + "security/" }
    /// `/spool/<cluster-id>/security/users/`
    public var usersPrefix: String { securityPrefix + "users/" }
    /// `/spool/<cluster-id>/security/acls/`
    public var aclsPrefix: String { securityPrefix + "acls/" }
    /// `/spool/<cluster-id>/security/quotas/`
    public var quotasPrefix: String { securityPrefix + "quotas/" }

    /// The key of `user`'s credential for a mechanism (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    public func credential(user: String, mechanism: String) -> String {
        usersPrefix + Self.escape("=" + user) + "/" + Self.escape(mechanism)
    }
    /// Every key of `user`'s credentials.
    public func credentialsPrefix(user: String) -> String { usersPrefix + Self.escape("=" + user) + "/" }
    /// The key of one ACL.
    public func acl(_ record: AclRecord) -> String {
        aclsPrefix + [String(record.resourceType), String(record.patternType), Self.escape("=" + record.resourceName),
                      Self.escape("=" + record.principal), Self.escape("=" + record.host), String(record.operation),
                      String(record.permission)].joined(separator: "/")
    }
    /// The key of one quota entity's values.
    public func quota(_ record: QuotaRecord) -> String {
        quotasPrefix + Self.escape(record.userPart) + "/" + Self.escape(record.clientIdPart)
    }

    /// Percent-escapes every byte outside `[A-Za-z0-9_-]` (so `.`, `/`, `%` never appear raw).
    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text.utf8 {
            if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d {
                out.unicodeScalars.append(Unicode.Scalar(c))
            } else {
                out += "%" + (c < 16 ? "0" : "") + String(c, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

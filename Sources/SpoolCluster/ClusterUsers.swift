import SpoolCoordination
import SpoolEtcd
import SpoolSecurity

/// A cluster's SCRAM users straight in etcd (`spool user … --etcd`): the same records
/// AlterUserScramCredentials writes through a broker, for when no broker can be logged in to
/// yet — the first user of a cluster whose listeners all need a login, the inter-broker user
/// among them (Kafka's `kafka-configs --zookeeper` / `kafka-storage format --add-scram`).
/// Every broker applies a change from its watch, as it applies one made through another broker.
///
/// ```swift
/// let users = try ClusterUsers(client: client, clusterId: "c1")
/// try await users.upsert(user: "broker", try .derive(password: pw, mechanism: .sha512, iterations: 4096))
/// ```
public struct ClusterUsers: Sendable {
    let store: SecurityStore

    public init(client: EtcdClient, clusterId: String) throws {
        store = SecurityStore(client: client, keys: try ClusterKeys(clusterId: clusterId))
    }

    /// Adds or replaces `user`'s credential for its mechanism.
    public func upsert(user: String, _ credential: ScramCredential) async throws {
        try await store.putCredential(ClusterSecurityRecords.record(user: user, credential))
    }

    /// Deletes `user`'s credential for `mechanism` (all of them when nil); false when there was none.
    public func delete(user: String, mechanism: ScramMechanism?) async throws -> Bool {
        try await store.deleteCredential(user: user, mechanism: mechanism?.name) != nil
    }

    /// Every user and its credentials, by name (records that do not decode are left out).
    public func list() async throws -> [(user: String, credentials: [ScramCredential])] {
        var users: [String: [ScramCredential]] = [:]
        for record in try await store.readCredentials() {
            if let credential = ClusterSecurityRecords.credential(record) { users[record.user, default: []].append(credential) }
        }
        return users.keys.sorted().map { ($0, users[$0]!.sorted { $0.mechanism.name < $1.mechanism.name }) }
    }
}

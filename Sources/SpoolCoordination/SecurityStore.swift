import SpoolEtcd

/// Writes the cluster's security records (`security/...`): SCRAM credentials, ACLs and client
/// quotas, each a plain put or delete (a record's key is what it is, so writing it twice is
/// harmless). Every broker applies them from its `ClusterSnapshot`'s watch.
///
/// ```swift
/// let store = SecurityStore(client: client, keys: keys)
/// try await store.putCredential(record)           // every broker: alice can log in
/// try await store.putAcls([acl])                  // every broker: the ACL is checked
/// ```
public struct SecurityStore: Sendable {
    public let client: EtcdClient
    public let keys: ClusterKeys

    /// Most operations in one etcd transaction (etcd's `--max-txn-ops` default is 128).
    public static let txnOperationsMax = 128

    public init(client: EtcdClient, keys: ClusterKeys) {
        self.client = client
        self.keys = keys
    }

    /// Adds or replaces a user's credential for its mechanism; returns the revision written.
    @discardableResult
    public func putCredential(_ record: CredentialRecord) async throws -> Int64 {
        try await client.put(keys.credential(user: record.user, mechanism: record.mechanism), try JSONValue.encode(record)).revision
    }

    /// Deletes a user's credential for `mechanism` (every mechanism when nil); the revision,
    /// nil when there was none.
    public func deleteCredential(user: String, mechanism: String?) async throws -> Int64? {
        let range: EtcdKeyRange = mechanism.map { .key(keys.credential(user: user, mechanism: $0)) } ?? .prefix(keys.credentialsPrefix(user: user))
        let result = try await client.delete(range)
        return result.deleted > 0 ? result.revision : nil
    }

    /// Every user's credential records, in one linearizable read.
    public func readCredentials() async throws -> [CredentialRecord] {
        try await client.range(.prefix(keys.usersPrefix)).kvs.map { try JSONValue.decode(CredentialRecord.self, from: $0) }
    }

    /// Every ACL, by key, in one linearizable read.
    public func readAcls() async throws -> [String: AclRecord] {
        var acls: [String: AclRecord] = [:]
        for kv in try await client.range(.prefix(keys.aclsPrefix)).kvs {
            acls[kv.key] = try JSONValue.decode(AclRecord.self, from: kv)
        }
        return acls
    }

    /// Puts ACLs, `txnOperationsMax` per transaction; returns the last revision written.
    @discardableResult
    public func putAcls(_ records: [AclRecord]) async throws -> Int64 {
        try await writeInChunks(try records.map { .put(keys.acl($0), try JSONValue.encode($0)) })
    }

    /// Deletes ACLs by key, `txnOperationsMax` per transaction; returns the last revision written.
    @discardableResult
    public func deleteAcls(keys aclKeys: [String]) async throws -> Int64 {
        try await writeInChunks(aclKeys.map { .delete(.key($0)) })
    }

    /// Runs `operations` unconditionally, `txnOperationsMax` per transaction (etcd's limit on
    /// operations in one), in order; returns the last revision written (0 for none).
    private func writeInChunks(_ operations: [EtcdOperation]) async throws -> Int64 {
        var revision: Int64 = 0
        var start = 0
        while start < operations.count {
            let chunk = Array(operations[start..<min(operations.count, start + Self.txnOperationsMax)])
            revision = try await client.txn(compare: [], success: chunk).revision
            start += chunk.count
        }
        return revision
    }

    /// Puts an entity's quota values, or deletes them when the record has no rate; returns the revision.
    @discardableResult
    public func putQuota(_ record: QuotaRecord) async throws -> Int64 {
        let key = keys.quota(record)
        if record.producerByteRate == nil && record.consumerByteRate == nil {
            return try await client.delete(.key(key)).revision
        }
        return try await client.put(key, try JSONValue.encode(record)).revision
    }
}

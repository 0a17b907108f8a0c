/// Where a replicated `CredentialStore` sends its changes in cluster mode: the cluster layer
/// implements it over etcd (`SpoolCluster`), so SpoolSecurity never sees etcd. Errors are
/// `SecurityError(.storage)` when the cluster's metadata did not answer.
public protocol CredentialReplication: Sendable {
    /// Adds or replaces `user`'s credential for its mechanism, cluster-wide.
    func upsert(user: String, _ credential: ScramCredential) async throws(SecurityError)
    /// Removes `user`'s credential for `mechanism` (every one when nil); false if there was none.
    func delete(user: String, mechanism: ScramMechanism?) async throws(SecurityError) -> Bool
}

import SpoolRecords

/// ACLs and client quotas in cluster mode: changes go to the cluster's metadata (etcd, through
/// `SpoolCluster`) from whichever broker received them, and every broker applies what the
/// metadata holds (`Broker.applyClusterSecurity`). Set on the broker
/// (`Broker.clusterSecurity`) before the listeners start. Single-node brokers have none and
/// keep ACLs and quotas in their data directory. (SCRAM credentials go the same way through
/// SpoolSecurity's `CredentialReplication`.)
///
/// Errors are `BrokerError`s: `.clusterUnavailable` when etcd did not answer.
public protocol ClusterSecurityAdministration: Sendable {
    /// Adds ACLs (already valid) cluster-wide.
    func createAcls(_ acls: [AclBinding]) async throws
    /// Removes, cluster-wide, what each filter matches; one list of removed ACLs per filter.
    func deleteAcls(_ filters: [AclBindingFilter]) async throws -> [[AclBinding]]
    /// Sets an entity's quota values cluster-wide (empty values remove them).
    func setQuota(_ entity: QuotaEntity, _ values: QuotaValues) async throws
}

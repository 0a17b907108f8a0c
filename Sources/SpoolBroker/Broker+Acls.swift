import SpoolRecords

// ACLs (Kafka's CreateAcls, DescribeAcls, DeleteAcls; `spool acl`): stored whether or not
// the authorizer is on, so they can be put in place before it is turned on. Changes are
// written on the I/O pool.
extension Broker {
    /// Stores valid ACLs; throws `invalidRequest` naming the first invalid one (nothing stored then).
    public func createAcls(_ acls: [AclBinding]) async throws {
        if let bad = acls.first(where: { $0.invalidReason != nil }) {
            throw BrokerError(.invalidRequest, "\(bad): \(bad.invalidReason!)")
        }
        if let cluster = clusterSecurity { return try await cluster.createAcls(acls) }
        try await BrokerError.translateAsync {
            try await io.run { [authorizer] in try authorizer.acls.add(acls) }
        }
    }

    /// The ACLs the filter matches, sorted.
    public func describeAcls(_ filter: AclBindingFilter) -> [AclBinding] {
        authorizer.acls.all.filter(filter.matches).sorted { $0.description < $1.description }
    }

    /// Removes what each filter matches; one list of removed ACLs per filter.
    public func deleteAcls(_ filters: [AclBindingFilter]) async throws -> [[AclBinding]] {
        if let cluster = clusterSecurity { return try await cluster.deleteAcls(filters) }
        return try await BrokerError.translateAsync {
            try await io.run { [authorizer] in try authorizer.acls.remove(filters) }
        }
    }

    /// Cluster mode: replaces the ACLs and client quotas with what the cluster's metadata holds.
    public func applyClusterSecurity(acls: Set<AclBinding>, quotas: [QuotaEntity: QuotaValues]) {
        authorizer.acls.replaceAll(acls)
        self.quotas.store.replaceAll(quotas)
    }
}

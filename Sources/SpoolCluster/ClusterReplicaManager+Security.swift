import SpoolBroker
import SpoolCoordination
import SpoolRecords
import SpoolSecurity

// Security in cluster mode: SCRAM credentials, ACLs and client quotas live under
// `/spool/<cluster-id>/security/`; a change through any broker is a put or delete there, and
// every broker's snapshot watch applies the whole set to its replicated stores.
extension ClusterReplicaManager: ClusterSecurityAdministration, CredentialReplication {
    /// How long a change waits for this broker's own stores to show it.
    static let securityVisibleWait: Duration = .seconds(3)

    /// Replaces the replicated stores' contents when the snapshot's security records changed.
    func applySecurity(_ snap: ClusterSnapshot) {
        let known = securityApplied.withLockedValue { $0.version }
        guard known != snap.securityVersion else { return }
        if credentials?.isReplicated == true {
            var users: [String: [ScramMechanism: ScramCredential]] = [:]
            for record in snap.credentials.values {
                guard let credential = ClusterSecurityRecords.credential(record) else { continue }
                users[record.user, default: [:]][credential.mechanism] = credential
            }
            credentials?.replaceAll(users)
        }
        let acls = Set(snap.acls.values.compactMap(ClusterSecurityRecords.acl))
        var quotas: [QuotaEntity: QuotaValues] = [:]
        for record in snap.quotas.values {
            if let (entity, values) = ClusterSecurityRecords.quota(record) { quotas[entity] = values }
        }
        if broker.config.securityInCluster { broker.applyClusterSecurity(acls: acls, quotas: quotas) }
        securityApplied.withLockedValue { $0 = (snap.securityVersion, snap.revision) }
    }

    /// Waits (bounded) until this broker applied the security records at `revision` or later.
    private func waitUntilApplied(_ revision: Int64) async {
        let deadline = ContinuousClock.now + Self.securityVisibleWait
        while ContinuousClock.now < deadline, securityApplied.withLockedValue({ $0.revision }) < revision {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: CredentialReplication

    public func upsert(user: String, _ credential: ScramCredential) async throws(SecurityError) {
        do {
            let revision = try await securityStore.putCredential(ClusterSecurityRecords.record(user: user, credential))
            await waitUntilApplied(revision)
        } catch {
            throw SecurityError(.storage, "the cluster's etcd did not answer: \(error)")
        }
    }

    public func delete(user: String, mechanism: ScramMechanism?) async throws(SecurityError) -> Bool {
        do {
            guard let revision = try await securityStore.deleteCredential(user: user, mechanism: mechanism?.name) else { return false }
            await waitUntilApplied(revision)
            return true
        } catch {
            throw SecurityError(.storage, "the cluster's etcd did not answer: \(error)")
        }
    }

    // MARK: ClusterSecurityAdministration

    public func createAcls(_ acls: [AclBinding]) async throws {
        guard !acls.isEmpty else { return }
        let revision = try await etcdCall { try await self.securityStore.putAcls(acls.map(ClusterSecurityRecords.record)) }
        await waitUntilApplied(revision)
    }

    public func deleteAcls(_ filters: [AclBindingFilter]) async throws -> [[AclBinding]] {
        let stored = try await etcdCall { try await self.securityStore.readAcls() }
        var removed: [[AclBinding]] = []
        var keys = Set<String>()
        for filter in filters {
            var matched: [AclBinding] = []
            for (key, record) in stored {
                guard let acl = ClusterSecurityRecords.acl(record), filter.matches(acl) else { continue }
                matched.append(acl)
                keys.insert(key)
            }
            removed.append(matched.sorted { $0.description < $1.description })
        }
        if !keys.isEmpty {
            let doomed = keys.sorted()
            let revision = try await etcdCall { try await self.securityStore.deleteAcls(keys: doomed) }
            await waitUntilApplied(revision)
        }
        return removed
    }

    public func setQuota(_ entity: QuotaEntity, _ values: QuotaValues) async throws {
        let revision = try await etcdCall { try await self.securityStore.putQuota(ClusterSecurityRecords.record(entity, values)) }
        await waitUntilApplied(revision)
    }

    /// etcd failures as `BrokerError(.clusterUnavailable)`.
    private func etcdCall<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw BrokerError(.clusterUnavailable, "the cluster's etcd did not answer: \(error)")
        }
    }
}

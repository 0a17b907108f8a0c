// Authorization: the one check every listener's handlers call (principal and host, the
// operation, the resource). With the authorizer off every request is allowed and nothing
// is looked up. A refusal is counted and logged (rate-limited) unless `log` is false —
// Metadata's listing of every topic leaves out what the principal may not see, silently,
// as Kafka does.
extension Broker {
    /// Whether the authorizer is on (`authorizer.enabled`).
    public var authorizationEnabled: Bool { authorizer.config.enabled }

    /// Whether `who` may do `operation` on the resource `type`/`name`; `api` names the
    /// request in the denial's log line.
    public func authorize(_ who: AccessIdentity, _ operation: AclOperation, _ type: AclResourceType, _ name: String,
                          api: String, log: Bool = true) -> Bool {
        guard authorizer.config.enabled else { return true }
        if authorizer.authorize(principal: who.principal, host: who.host, operation, type, name) { return true }
        if log { events.authorizationDenied(who, operation, type, name, api: api) }
        return false
    }

    /// Whether `who` may do `operation` on the cluster resource (`kafka-cluster`).
    public func authorizeCluster(_ who: AccessIdentity, _ operation: AclOperation, api: String, log: Bool = true) -> Bool {
        authorize(who, operation, .cluster, AclResourceType.clusterName, api: api, log: log)
    }

    /// Whether `who` may do `operation` on some resource of `type` (`Authorizer.authorizeAny`).
    public func authorizeAny(_ who: AccessIdentity, _ operation: AclOperation, _ type: AclResourceType, api: String, log: Bool = true) -> Bool {
        guard authorizer.config.enabled else { return true }
        if authorizer.authorizeAny(principal: who.principal, host: who.host, operation, type) { return true }
        if log { events.authorizationDenied(who, operation, type, "*", api: api) }
        return false
    }
}

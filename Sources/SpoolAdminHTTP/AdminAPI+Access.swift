import SpoolBroker

// The admin API's access checks: the broker's own authorizer (`Broker.authorize`), never a
// second ACL evaluation. With the authorizer off every check passes.
extension AdminAPI {
    /// Who a call comes from when no one logged in (`http.auth.enabled` off, or an open path).
    public static let unauthenticated = AccessIdentity.anonymous(host: "admin-http")

    /// Whether `who` may do `operation` on the resource, silently (lists leave out what it
    /// may not see, as Metadata does).
    func may(_ who: AccessIdentity, _ operation: AclOperation, _ type: AclResourceType, _ name: String) -> Bool {
        broker.authorize(who, operation, type, name, api: "AdminHTTP", log: false)
    }

    /// Throws FORBIDDEN (HTTP 403) unless `who` may do `operation` on the resource; a refusal
    /// is counted and logged (rate-limited) as every denial is, naming `api`.
    func require(_ who: AccessIdentity, _ operation: AclOperation, _ type: AclResourceType, _ name: String, api: String) throws(AdminAPIError) {
        guard broker.authorize(who, operation, type, name, api: "AdminHTTP " + api) else {
            throw AdminAPIError(.forbidden, "\(who.principal) may not \("\(operation)".uppercased()) \(type) \(name)")
        }
    }
}

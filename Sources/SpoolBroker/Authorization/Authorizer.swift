/// Kafka's ACL authorizer (`AclAuthorizer`): super users may do anything; otherwise an ACL
/// that DENYs the principal (or `User:*`) from the host (or `*`) the operation (or ALL) on a
/// pattern covering the resource refuses it; else one that ALLOWs it (ALLOW of READ, WRITE,
/// DELETE or ALTER also allows DESCRIBE; ALLOW of ALTER_CONFIGS allows DESCRIBE_CONFIGS)
/// permits it; a resource no ACL covers follows `allowEveryoneIfNoAclFound`.
///
/// ```swift
/// let authorizer = Authorizer(config: .init(enabled: true, superUsers: ["User:admin"]), acls: store)
/// authorizer.authorize(principal: "User:alice", host: "127.0.0.1", .read, .topic, "orders")
/// ```
public struct Authorizer: Sendable {
    /// Kafka's `authorizer.class.name` (on or off), `super.users`, `allow.everyone.if.no.acl.found`.
    public struct Config: Sendable, Hashable {
        /// Off (the default): every request is allowed and ACLs are stored but not checked.
        public var enabled = false
        public var superUsers: Set<String> = []
        public var allowEveryoneIfNoAclFound = false
        public init(enabled: Bool = false, superUsers: Set<String> = [], allowEveryoneIfNoAclFound: Bool = false) {
            self.enabled = enabled
            self.superUsers = superUsers
            self.allowEveryoneIfNoAclFound = allowEveryoneIfNoAclFound
        }
    }

    public let config: Config
    public let acls: AclStore

    public init(config: Config, acls: AclStore) {
        self.config = config
        self.acls = acls
    }

    /// Whether `principal` connecting from `host` may do `operation` on the resource.
    public func authorize(principal: String, host: String, _ operation: AclOperation, _ type: AclResourceType, _ name: String) -> Bool {
        guard config.enabled else { return true }
        return Self.decide(principal: principal, host: host, operation, type, name, acls: acls.all, config: config)
    }

    /// Whether `principal` may do `operation` on at least one resource of `type` (Kafka's
    /// `authorizeByResourceType`, for idempotent producers and CreateTopics): a super user; an
    /// ALLOW of the operation (or ALL) for the principal or `User:*` from the host on some
    /// pattern of that type, unless a DENY of it on every name (literal `*`) overrides it; or,
    /// with no ACL of that type at all, `allowEveryoneIfNoAclFound`.
    public func authorizeAny(principal: String, host: String, _ operation: AclOperation, _ type: AclResourceType) -> Bool {
        guard config.enabled else { return true }
        if config.superUsers.contains(principal) { return true }
        let ofType = acls.all.filter { $0.resourceType == type }
        if ofType.isEmpty { return config.allowEveryoneIfNoAclFound }
        func applies(_ acl: AclBinding) -> Bool {
            (acl.principal == principal || acl.principal == "User:*") && (acl.host == host || acl.host == "*")
                && (acl.operation == operation || acl.operation == .all)
        }
        if ofType.contains(where: { $0.permission == .deny && $0.patternType == .literal && $0.resourceName == "*" && applies($0) }) {
            return false
        }
        return ofType.contains { $0.permission == .allow && applies($0) }
    }

    static func decide(principal: String, host: String, _ operation: AclOperation, _ type: AclResourceType, _ name: String,
                       acls: Set<AclBinding>, config: Config) -> Bool {
        precondition(operation != .any && type != .any, "a request asks for a definite operation on a definite resource")
        if config.superUsers.contains(principal) { return true }
        let covering = acls.filter { $0.covers(type, name) }
        if covering.isEmpty { return config.allowEveryoneIfNoAclFound }
        func applies(_ acl: AclBinding) -> Bool {
            (acl.principal == principal || acl.principal == "User:*") && (acl.host == host || acl.host == "*")
        }
        if covering.contains(where: { $0.permission == .deny && applies($0) && ($0.operation == operation || $0.operation == .all) }) {
            return false
        }
        var granting: Set<AclOperation> = [operation, .all]
        if operation == .describe { granting.formUnion([.read, .write, .delete, .alter]) }
        if operation == .describeConfigs { granting.insert(.alterConfigs) }
        return covering.contains { $0.permission == .allow && applies($0) && granting.contains($0.operation) }
    }
}

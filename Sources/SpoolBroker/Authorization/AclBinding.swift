/// Kafka's ACL resource types (wire codes as Kafka's). `any` is for filters only.
public enum AclResourceType: Int8, Sendable, Hashable, CaseIterable {
    case any = 1, topic = 2, group = 3, cluster = 4, transactionalId = 5

    /// The cluster resource's one name.
    public static let clusterName = "kafka-cluster"
}

/// How an ACL's resource name matches: exactly (`*` matches every name) or as a prefix.
/// `any` and `match` are for filters only.
public enum AclPatternType: Int8, Sendable, Hashable, CaseIterable {
    case any = 1, match = 2, literal = 3, prefixed = 4
}

/// Kafka's ACL operations (wire codes as Kafka's). `any` is for filters only.
public enum AclOperation: Int8, Sendable, Hashable, CaseIterable {
    case any = 1, all = 2, read = 3, write = 4, create = 5, delete = 6, alter = 7, describe = 8
    case clusterAction = 9, describeConfigs = 10, alterConfigs = 11, idempotentWrite = 12
}

/// ALLOW or DENY (DENY wins). `any` is for filters only.
public enum AclPermission: Int8, Sendable, Hashable, CaseIterable {
    case any = 1, deny = 2, allow = 3
}

/// One ACL: `principal` from `host` may (or may not) do `operation` on the resources
/// `resourceType`/`resourceName`/`patternType` name. Principals are `User:name` (or
/// `User:*`), hosts an address or `*`.
public struct AclBinding: Sendable, Hashable, CustomStringConvertible {
    public var resourceType: AclResourceType
    public var resourceName: String
    public var patternType: AclPatternType
    public var principal: String
    public var host: String
    public var operation: AclOperation
    public var permission: AclPermission

    public init(resourceType: AclResourceType, resourceName: String, patternType: AclPatternType = .literal,
                principal: String, host: String = "*", operation: AclOperation, permission: AclPermission) {
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.patternType = patternType
        self.principal = principal
        self.host = host
        self.operation = operation
        self.permission = permission
    }

    /// Why this binding cannot be stored (a filter-only value, a malformed principal), or nil.
    public var invalidReason: String? {
        if resourceType == .any { return "an ACL names a resource type, not ANY" }
        if patternType == .any || patternType == .match { return "an ACL's pattern type is LITERAL or PREFIXED, not ANY or MATCH" }
        if operation == .any { return "an ACL names an operation, not ANY" }
        if permission == .any { return "an ACL is ALLOW or DENY, not ANY" }
        if resourceName.isEmpty { return "an ACL's resource name is not empty" }
        if resourceType == .cluster && resourceName != AclResourceType.clusterName {
            return "the cluster resource is named \(AclResourceType.clusterName), not '\(resourceName)'"
        }
        guard let colon = principal.firstIndex(of: ":"), colon != principal.startIndex, principal.index(after: colon) != principal.endIndex else {
            return "principal '\(principal)' is not TYPE:NAME (User:alice, User:*)"
        }
        if host.isEmpty { return "an ACL's host is an address or *" }
        return nil
    }

    /// Whether this ACL's resource pattern covers the resource `type`/`name`.
    func covers(_ type: AclResourceType, _ name: String) -> Bool {
        guard resourceType == type else { return false }
        switch patternType {
        case .literal: return resourceName == name || resourceName == "*"
        case .prefixed: return name.hasPrefix(resourceName)
        case .any, .match: return false
        }
    }

    public var description: String {
        "\(permission) \(principal) from \(host) \(operation) on \(resourceType) \(patternType) '\(resourceName)'"
    }
}

/// Which ACLs a DescribeAcls or DeleteAcls asks for: nil fields and `any` match everything;
/// pattern `match` selects the ACLs that would apply to the named resource.
public struct AclBindingFilter: Sendable, Hashable {
    public var resourceType: AclResourceType
    public var resourceName: String?
    public var patternType: AclPatternType
    public var principal: String?
    public var host: String?
    public var operation: AclOperation
    public var permission: AclPermission

    public init(resourceType: AclResourceType = .any, resourceName: String? = nil, patternType: AclPatternType = .any,
                principal: String? = nil, host: String? = nil, operation: AclOperation = .any, permission: AclPermission = .any) {
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.patternType = patternType
        self.principal = principal
        self.host = host
        self.operation = operation
        self.permission = permission
    }

    public func matches(_ acl: AclBinding) -> Bool {
        if resourceType != .any && acl.resourceType != resourceType { return false }
        switch patternType {
        case .any:
            if let name = resourceName, acl.resourceName != name { return false }
        case .match:
            if let name = resourceName, !acl.covers(acl.resourceType, name) { return false }
        case .literal, .prefixed:
            if acl.patternType != patternType { return false }
            if let name = resourceName, acl.resourceName != name { return false }
        }
        if let principal, acl.principal != principal { return false }
        if let host, acl.host != host { return false }
        if operation != .any && acl.operation != operation { return false }
        if permission != .any && acl.permission != permission { return false }
        return true
    }
}

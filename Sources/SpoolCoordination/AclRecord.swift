/// One ACL as etcd keeps it (`security/acls/...`): Kafka's wire codes for the resource type,
/// pattern type, operation and permission, and the text fields as they are.
public struct AclRecord: Codable, Sendable, Hashable {
    public var resourceType: Int8
    public var patternType: Int8
    public var resourceName: String
    public var principal: String
    public var host: String
    public var operation: Int8
    public var permission: Int8

    public init(resourceType: Int8, patternType: Int8, resourceName: String, principal: String, host: String, operation: Int8, permission: Int8) {
        self.resourceType = resourceType
        self.patternType = patternType
        self.resourceName = resourceName
        self.principal = principal
        self.host = host
        self.operation = operation
        self.permission = permission
    }
}

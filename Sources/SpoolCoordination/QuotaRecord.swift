/// One client-quota entity and its byte rates as etcd keeps it (`security/quotas/...`). Each
/// part of the entity is absent (nil), the default (`*`) or a name (`=name`), as in
/// `client-quotas.meta`.
public struct QuotaRecord: Codable, Sendable, Hashable {
    /// `-` (absent), `*` (default user) or `=<name>`.
    public var userPart: String
    /// `-` (absent), `*` (default client id) or `=<name>`.
    public var clientIdPart: String
    public var producerByteRate: Int64?
    public var consumerByteRate: Int64?

    public init(userPart: String, clientIdPart: String, producerByteRate: Int64?, consumerByteRate: Int64?) {
        self.userPart = userPart
        self.clientIdPart = clientIdPart
        self.producerByteRate = producerByteRate
        self.consumerByteRate = consumerByteRate
    }
}

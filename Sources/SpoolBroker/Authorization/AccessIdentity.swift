/// Who asks and from where, as the authorizer sees a request: the connection's principal
/// (`User:alice`; `User:ANONYMOUS` when it did not authenticate) and the client's address.
/// Every listener builds one per connection and hands it to `Broker.authorize`.
public struct AccessIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Kafka's principal of a connection that did not authenticate.
    public static let anonymousPrincipal = "User:ANONYMOUS"

    public var principal: String
    public var host: String

    public init(principal: String, host: String) {
        self.principal = principal
        self.host = host
    }

    /// A connection that did not authenticate (plaintext, or a listener without SASL).
    public static func anonymous(host: String) -> AccessIdentity {
        AccessIdentity(principal: anonymousPrincipal, host: host)
    }

    public var description: String { "\(principal)@\(host)" }
}

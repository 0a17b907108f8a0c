/// Who a connection is, once authenticated: Kafka's `User:name` form, from SASL (the user
/// name) or from a mutual-TLS client certificate (`User:CN=<common name>`). Connections that
/// did not authenticate are `User:ANONYMOUS`, as in Kafka. Ready for ACLs (issue 15 item 4).
public struct Principal: Sendable, Hashable, CustomStringConvertible {
    /// Always "User" today (Kafka's only principal type).
    public var type: String
    public var name: String

    public init(type: String = "User", name: String) {
        self.type = type
        self.name = name
    }

    /// A connection that did not authenticate (plaintext, or TLS without a client certificate).
    public static let anonymous = Principal(name: "ANONYMOUS")

    /// `User:name`.
    public var description: String { "\(type):\(name)" }

    /// The principal of a client certificate, given its common name.
    public static func certificate(commonName: String) -> Principal {
        Principal(name: "CN=\(commonName)")
    }
}

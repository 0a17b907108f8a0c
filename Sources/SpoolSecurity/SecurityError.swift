/// A failure of authentication or of the credential store, with a code to match on and a
/// message for the client or the operator.
public struct SecurityError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Wrong password, unknown user, bad proof: Kafka's SASL_AUTHENTICATION_FAILED.
        case authenticationFailed
        /// A malformed SASL message or one out of order: ILLEGAL_SASL_STATE / a closed connection.
        case malformed
        /// A credential that cannot be stored (iterations out of range, empty password or name).
        case invalidCredential
        /// No such user (deleting, describing).
        case unknownUser
        /// The credential file could not be read or written.
        case storage
        /// TLS settings (certificate, key, CA) could not be loaded.
        case tls
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

import SpoolSecurity

/// Security of the native listener (README "Security", FRAMING.md "Authentication"): TLS
/// with `TLSSettings` (certificate, key, client CA, `ssl.client.auth`) and authentication —
/// SCRAM-SHA-256/512 through the Authenticate call against the same credential store as the
/// Kafka listener, or the principal of a verified client certificate.
///
/// ```swift
/// var security = NativeSecurityConfig()
/// security.tls = TLSSettings(certificatePath: "certs/broker.pem", keyPath: "certs/broker.key")
/// security.authentication = .required
/// security.credentials = try CredentialStore(directory: "spool-data")
/// let listener = try await NativeListener.start(broker: broker, group: group, security: security)
/// ```
public struct NativeSecurityConfig: Sendable {
    /// `--native-auth`: whether a connection must prove who it is before its calls run.
    public enum Authentication: String, Sendable, CaseIterable {
        /// No authentication: Authenticate is refused, every connection is `User:ANONYMOUS`
        /// (or its client certificate's principal).
        case none
        /// A client may authenticate; one that does not runs as `User:ANONYMOUS`.
        case optional
        /// Every call but Handshake and Authenticate before authentication (SCRAM, or a
        /// verified client certificate) is answered UNAUTHENTICATED and the connection closed.
        case required
    }

    /// TLS on the listener; nil: plaintext.
    public var tls: TLSSettings?
    public var authentication: Authentication = .none
    /// The SCRAM credentials (needed unless `authentication` is `.none`).
    public var credentials: CredentialStore?
    /// The SCRAM mechanisms Authenticate accepts.
    public var mechanisms: [String] = [ScramMechanism.sha256.name, ScramMechanism.sha512.name]

    public init(tls: TLSSettings? = nil, authentication: Authentication = .none, credentials: CredentialStore? = nil) {
        self.tls = tls
        self.authentication = authentication
        self.credentials = credentials
    }
}

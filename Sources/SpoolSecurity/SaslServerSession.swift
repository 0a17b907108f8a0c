/// One SASL authentication on a connection, whatever the mechanism: PLAIN (RFC 4616) or
/// SCRAM-SHA-256/512, each token in, the answer out, until success or failure.
///
/// ```swift
/// var session = try SaslServerSession(mechanism: "SCRAM-SHA-512", store: store)
/// switch session.step(token) { case .challenge(let bytes): …; case .success(let bytes, let principal): …; case .failure(let error): … }
/// ```
public struct SaslServerSession: Sendable {
    /// The mechanisms Spool offers, in the order it advertises them.
    public static let mechanisms = ["PLAIN", ScramMechanism.sha256.name, ScramMechanism.sha512.name]
    /// Longest PLAIN message accepted.
    public static let maxPlainBytes = 1024

    public enum Step: Sendable {
        /// Send these bytes and wait for the next token.
        case challenge([UInt8])
        /// Authenticated: send these bytes (possibly empty).
        case success([UInt8], Principal)
        /// Refused: say why and close.
        case failure(SecurityError)
    }

    private enum Kind: Sendable {
        case plain(CredentialStore)
        case scram(ScramServer, sentFirst: Bool)
    }
    private var kind: Kind
    public let mechanism: String
    /// The user the client claimed to be, once a token named one (for the log of a failure).
    public private(set) var user: String?

    /// Nil for a mechanism not in `enabled`.
    public init?(mechanism: String, store: CredentialStore, enabled: [String] = SaslServerSession.mechanisms) {
        guard enabled.contains(mechanism) else { return nil }
        self.mechanism = mechanism
        if mechanism == "PLAIN" {
            kind = .plain(store)
        } else if let scram = ScramMechanism(rawValue: mechanism) {
            kind = .scram(ScramServer(mechanism: scram, store: store), sentFirst: false)
        } else {
            return nil
        }
    }

    public mutating func step(_ token: [UInt8]) -> Step {
        switch kind {
        case .plain(let store):
            let parts = token.prefix(Self.maxPlainBytes).split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3, !parts[1].isEmpty { user = String(decoding: parts[1], as: UTF8.self) }
            return Self.plain(token, store: store)
        case .scram(var server, let sentFirst):
            do throws(SecurityError) {
                if !sentFirst {
                    defer { user = server.user }
                    let answer = try server.receiveClientFirst(token)
                    kind = .scram(server, sentFirst: true)
                    return .challenge(answer)
                }
                let (answer, principal) = try server.receiveClientFinal(token)
                kind = .scram(server, sentFirst: true)
                return .success(answer, principal)
            } catch {
                return .failure(error)
            }
        }
    }

    /// `[authzid] NUL user NUL password`, checked against the user's SCRAM record.
    static func plain(_ token: [UInt8], store: CredentialStore) -> Step {
        guard token.count <= maxPlainBytes else { return .failure(SecurityError(.malformed, "PLAIN message too long")) }
        let parts = token.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(SecurityError(.malformed, "PLAIN message must be authzid NUL user NUL password")) }
        let authzid = String(decoding: parts[0], as: UTF8.self)
        let user = String(decoding: parts[1], as: UTF8.self)
        let password = String(decoding: parts[2], as: UTF8.self)
        let failed = SecurityError(.authenticationFailed, "Authentication failed: Invalid username or password")
        guard !user.isEmpty, !password.isEmpty else {
            return .failure(SecurityError(.authenticationFailed, "Authentication failed: username or password not specified"))
        }
        guard authzid.isEmpty || authzid == user else {
            return .failure(SecurityError(.authenticationFailed, "Authentication failed: Client requested an authorization id that is different from username"))
        }
        guard let credential = store.anyCredential(user: user), credential.matches(password: password) else { return .failure(failed) }
        return .success([], Principal(name: user))
    }
}

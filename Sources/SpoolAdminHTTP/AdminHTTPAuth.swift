import Foundation
import SpoolBroker
import SpoolSecurity

/// The admin listener's login (`http.auth.enabled`): HTTP basic checked against the SCRAM
/// credentials in `credentials.json` (the users `spool user create` makes), or a bearer
/// token from `http.auth.token-file`. Paths in ``openPaths`` answer without a login.
///
/// Failures (a wrong password, an unknown user, a bad token, a malformed header) are counted
/// in `spool_authentications_total` and logged through the broker's rate-limited security
/// events, as the Kafka listener's SASL failures are; a request with no `Authorization`
/// header at all (what a browser sends before its login prompt) is refused without either.
/// A success is logged when the password was checked with PBKDF2 (a login), not on every
/// request the verified-login cache answers.
///
/// ```swift
/// let auth = AdminHTTPAuth(verifier: PasswordVerifier(store: store), events: events)
/// let admin = try AdminHTTPListener(exporter: exporter, host: "127.0.0.1", port: 9644, auth: auth, logger: logger)
/// ```
public struct AdminHTTPAuth: Sendable {
    /// `http.auth.open.paths`' default.
    public static let defaultOpenPaths = ["/metrics", "/health"]
    /// The realm of the `WWW-Authenticate` challenge.
    public static let realm = "spool"
    /// Longest `Authorization` header value read.
    public static let maxHeaderBytes = 4096
    /// The listener name in authentication log lines.
    static let listenerName = "admin-http"

    /// Paths answered without a login: exact, or a prefix when the entry ends with `*`.
    public var openPaths: [String]
    public let verifier: PasswordVerifier
    public var tokens: BearerTokens?
    /// Where failures and logins are counted and logged (nil: nowhere, in tests).
    public let events: BrokerEvents?

    public init(verifier: PasswordVerifier, tokens: BearerTokens? = nil, openPaths: [String] = AdminHTTPAuth.defaultOpenPaths,
                events: BrokerEvents?) {
        self.verifier = verifier
        self.tokens = tokens
        self.openPaths = openPaths
        self.events = events
    }

    /// `http.auth.open.paths`: comma-separated paths, each starting with `/` (empty: none open).
    public static func parseOpenPaths(_ text: String) -> [String]? {
        let paths = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return paths.allSatisfy({ $0.hasPrefix("/") }) ? paths : nil
    }

    public func isOpen(_ path: String) -> Bool {
        openPaths.contains { entry in
            entry.hasSuffix("*") ? path.hasPrefix(entry.dropLast()) : path == entry
        }
    }

    /// What a request's credentials come to.
    public enum Outcome: Sendable, Equatable {
        /// Logged in as this user (principal `User:<name>`).
        case user(String)
        /// No `Authorization` header.
        case missing
        /// Credentials given and refused (the reason is for the log, not the client).
        case refused(String)
    }

    /// Checks an `Authorization` header value from `client` (an address, for the log).
    public func authenticate(_ header: String?, client: String) -> Outcome {
        guard let header else { return .missing }
        guard header.utf8.count <= Self.maxHeaderBytes, let space = header.firstIndex(of: " ") else {
            return refuse(user: nil, mechanism: "BASIC", client: client, reason: "malformed Authorization header")
        }
        let scheme = header[..<space].lowercased()
        let value = header[header.index(after: space)...].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "basic":
            guard let decoded = Data(base64Encoded: value), let text = String(data: decoded, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else {
                return refuse(user: nil, mechanism: "BASIC", client: client, reason: "malformed basic credentials")
            }
            let user = String(text[..<colon])
            let password = String(text[text.index(after: colon)...])
            switch verifier.verify(user: user, password: password) {
            case .verified(let cached):
                if !cached {
                    events?.authenticationSucceeded(principal: "User:\(user)", mechanism: "BASIC", client: client, listener: Self.listenerName)
                }
                return .user(user)
            case .unknownUser:
                return refuse(user: user.isEmpty ? nil : user, mechanism: "BASIC", client: client, reason: "unknown user")
            case .wrongPassword:
                return refuse(user: user, mechanism: "BASIC", client: client, reason: "wrong password")
            }
        case "bearer":
            guard let tokens, let user = tokens.user(for: value) else {
                return refuse(user: nil, mechanism: "BEARER", client: client, reason: tokens == nil ? "no token file is configured" : "unknown token")
            }
            return .user(user)
        default:
            return refuse(user: nil, mechanism: "other", client: client, reason: "unsupported scheme \(scheme.prefix(16))")
        }
    }

    private func refuse(user: String?, mechanism: String, client: String, reason: String) -> Outcome {
        events?.authenticationFailed(user: user, mechanism: mechanism, client: client, listener: Self.listenerName, reason: reason)
        return .refused(reason)
    }
}

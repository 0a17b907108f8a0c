import Crypto
import Synchronization

/// Checks a user name and password (HTTP basic on the admin listener) against the same
/// SCRAM records SASL uses: SaltedPassword from the stored salt and iterations, then
/// ClientKey → StoredKey, compared in constant time (`ScramCredential.matches`).
///
/// PBKDF2 costs milliseconds and a browser sends the password with every request, so a
/// verified login is remembered for ``entryLifetimeSeconds``: keyed by an HMAC (with a key
/// made at start, never stored) of the name and password, so the cache holds no password
/// and no hash an attacker could test guesses against offline. An entry holds the stored
/// key it was checked against: a changed or deleted credential invalidates it at once.
/// Failures are never cached (each wrong guess pays PBKDF2).
///
/// ```swift
/// let verifier = PasswordVerifier(store: store)
/// verifier.verify(user: "alice", password: "secret")   // .verified(cached: false), then (cached: true)
/// ```
public final class PasswordVerifier: Sendable {
    /// Most verified logins remembered (the oldest goes when full).
    public static let maxEntries = 1024
    /// How long a verified login is remembered, in seconds.
    public static let entryLifetimeSeconds = 300

    /// What a check found.
    public enum Outcome: Sendable, Equatable {
        /// The password is the user's; `cached` when no PBKDF2 ran for this check.
        case verified(cached: Bool)
        /// No credential for the user.
        case unknownUser
        /// The user exists and the password is not theirs.
        case wrongPassword
    }

    private struct Entry {
        var storedKey: [UInt8]
        var expires: ContinuousClock.Instant
    }

    public let store: CredentialStore
    private let key = SymmetricKey(size: .bits256)
    private let entries = Mutex<[[UInt8]: Entry]>([:])
    private let lifetime: Duration

    public init(store: CredentialStore, lifetime: Duration = .seconds(entryLifetimeSeconds)) {
        self.store = store
        self.lifetime = lifetime
    }

    public func verify(user: String, password: String) -> Outcome {
        guard !user.isEmpty, !password.isEmpty, let credential = store.anyCredential(user: user) else { return .unknownUser }
        var material = Array(user.utf8)
        material.append(0)
        material.append(contentsOf: password.utf8)
        let id = Array(HMAC<SHA256>.authenticationCode(for: material, using: key))
        let now = ContinuousClock.now
        let hit = entries.withLock { entries -> Bool in
            guard let entry = entries[id] else { return false }
            guard entry.expires > now, constantTimeEqual(entry.storedKey, credential.storedKey) else {
                entries[id] = nil
                return false
            }
            return true
        }
        if hit { return .verified(cached: true) }
        guard credential.matches(password: password) else { return .wrongPassword }
        entries.withLock { entries in
            if entries.count >= Self.maxEntries {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= Self.maxEntries, let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                    entries[oldest] = nil
                }
            }
            entries[id] = Entry(storedKey: credential.storedKey, expires: now + lifetime)
        }
        return .verified(cached: false)
    }

    /// Verified logins remembered now (for tests and the curious).
    public var cachedLogins: Int { entries.withLock { $0.count } }
}

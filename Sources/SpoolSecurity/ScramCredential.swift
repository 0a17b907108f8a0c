import Crypto

/// What the broker keeps of a user's password for one SCRAM mechanism (RFC 5802 §3): the
/// salt, the iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
/// ServerKey = HMAC(SaltedPassword, "Server Key"). Never the password or SaltedPassword.
public struct ScramCredential: Sendable, Hashable, Codable {
    public var mechanism: ScramMechanism
    public var salt: [UInt8]
    public var iterations: Int
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    public init(mechanism: ScramMechanism, salt: [UInt8], iterations: Int, storedKey: [UInt8], serverKey: [UInt8]) {
        self.mechanism = mechanism
        self.salt = salt
        self.iterations = iterations
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Bytes of a random salt.
    public static let saltBytes = 32

    /// From a salted password (what AlterUserScramCredentials carries).
    public init(mechanism: ScramMechanism, salt: [UInt8], iterations: Int, saltedPassword: [UInt8]) {
        let clientKey = mechanism.hmac(key: saltedPassword, Array("Client Key".utf8))
        self.init(
            mechanism: mechanism, salt: salt, iterations: iterations, storedKey: mechanism.hash(clientKey),
            serverKey: mechanism.hmac(key: saltedPassword, Array("Server Key".utf8)))
    }

    /// From a password: a fresh random salt (unless given) and PBKDF2.
    public static func derive(
        password: String, mechanism: ScramMechanism, iterations: Int = ScramMechanism.minIterations, salt: [UInt8]? = nil
    ) throws(SecurityError) -> ScramCredential {
        guard (ScramMechanism.minIterations...ScramMechanism.maxIterations).contains(iterations) else {
            throw SecurityError(.invalidCredential, "iterations must be in \(ScramMechanism.minIterations)...\(ScramMechanism.maxIterations) (got \(iterations))")
        }
        guard !password.isEmpty else { throw SecurityError(.invalidCredential, "the password is empty") }
        let salt = salt ?? randomBytes(saltBytes)
        let salted = mechanism.saltedPassword(Array(password.utf8), salt: salt, iterations: iterations)
        return ScramCredential(mechanism: mechanism, salt: salt, iterations: iterations, saltedPassword: salted)
    }

    /// True if `password` is this credential's password (PLAIN checks against the SCRAM
    /// record: it derives with the stored salt and compares StoredKey in constant time).
    public func matches(password: String) -> Bool {
        let salted = mechanism.saltedPassword(Array(password.utf8), salt: salt, iterations: iterations)
        let candidate = ScramCredential(mechanism: mechanism, salt: salt, iterations: iterations, saltedPassword: salted)
        return constantTimeEqual(candidate.storedKey, storedKey)
    }
}

/// Cryptographically random bytes.
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

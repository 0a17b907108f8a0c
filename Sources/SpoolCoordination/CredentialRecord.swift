/// One user's SCRAM credential for one mechanism, as etcd keeps it (`security/users/...`):
/// what `ScramCredential` holds, base64 for the byte fields. Never the password or the salted
/// password: a reader of etcd can check logins but not log in.
public struct CredentialRecord: Codable, Sendable, Hashable {
    public var user: String
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    public var mechanism: String
    public var iterations: Int
    public var salt: String
    public var storedKey: String
    public var serverKey: String

    public init(user: String, mechanism: String, iterations: Int, salt: String, storedKey: String, serverKey: String) {
        self.user = user
        self.mechanism = mechanism
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }
}

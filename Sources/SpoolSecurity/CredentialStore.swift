import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The SCRAM credentials of every user, in `<data dir>/credentials.json`: per user and
/// mechanism the salt, iterations, stored key and server key (base64), never a password.
/// Every change rewrites the file atomically (a temporary file, fsync, rename, fsync of
/// the directory) under an advisory lock (`credentials.lock`), so `spool user create`
/// against the data dir and the broker's AlterUserScramCredentials do not lose each
/// other's changes; the broker re-reads the file when it changed on disk, so users
/// created by the command line can log in without a restart.
///
/// In cluster mode the store is replicated instead (`init(replicated:)`): it holds in memory
/// what the cluster's metadata holds (`replaceAll`, from the cluster layer's watch) and sends
/// changes there (`CredentialReplication`, set by the cluster layer); nothing goes to files.
///
/// ```swift
/// let store = try CredentialStore(directory: "spool-data")
/// try store.upsert(user: "alice", try .derive(password: "secret", mechanism: .sha512))
/// store.credential(user: "alice", mechanism: .sha512)?.matches(password: "secret")   // true
/// ```
public final class CredentialStore: Sendable {
    /// The file's name in the data directory.
    public static let fileName = "credentials.json"
    /// Longest user name accepted.
    public static let maxUserNameBytes = 256

    public let path: String
    private let lockPath: String
    private struct State {
        var users: [String: [ScramMechanism: ScramCredential]] = [:]
        /// The file's modification time and size when last read.
        var stamp: (Int, Int, Int) = (0, 0, -1)
    }
    private let state = Mutex(State())
    /// Cluster mode: no file; changes go to `replication`, contents come from `replaceAll`.
    public let isReplicated: Bool
    private let replication = Mutex<(any CredentialReplication)?>(nil)

    /// A replicated store (cluster mode): empty until the cluster layer's first `replaceAll`;
    /// changes fail until it calls `replicate(through:)`.
    public init(replicated: Void) {
        path = ""
        lockPath = ""
        isReplicated = true
    }

    /// Cluster mode: where changes go from now on.
    public func replicate(through replication: any CredentialReplication) {
        self.replication.withLock { $0 = replication }
    }

    /// Cluster mode: replaces every credential with what the cluster's metadata holds.
    public func replaceAll(_ users: [String: [ScramMechanism: ScramCredential]]) {
        precondition(isReplicated, "only a replicated store takes its contents from the cluster")
        state.withLock { $0.users = users }
    }

    /// Adds or replaces a credential in either mode: the file, or the cluster's metadata (then
    /// at once in this store too; every broker's watch applies it).
    public func upsertAnywhere(user: String, _ credential: ScramCredential) async throws(SecurityError) {
        guard isReplicated else { return try upsert(user: user, credential) }
        try Self.validate(user: user)
        try await replicationTarget().upsert(user: user, credential)
        state.withLock { $0.users[user, default: [:]][credential.mechanism] = credential }
    }

    /// Removes a credential in either mode (every mechanism when `mechanism` is nil).
    public func deleteAnywhere(user: String, mechanism: ScramMechanism? = nil) async throws(SecurityError) {
        guard isReplicated else { return try delete(user: user, mechanism: mechanism) }
        guard try await replicationTarget().delete(user: user, mechanism: mechanism) else {
            throw SecurityError(.unknownUser, "no credential for user \(user)\(mechanism.map { " and \($0.name)" } ?? "")")
        }
        state.withLock { state in
            if let mechanism { state.users[user]?[mechanism] = nil } else { state.users[user] = nil }
            if state.users[user]?.isEmpty == true { state.users[user] = nil }
        }
    }

    private func replicationTarget() throws(SecurityError) -> any CredentialReplication {
        guard let target = replication.withLock({ $0 }) else {
            throw SecurityError(.storage, "the broker has not joined the cluster yet; try again")
        }
        return target
    }

    /// Opens (or prepares) the store in `directory`; the file is created on the first change.
    public init(directory: String) throws(SecurityError) {
        path = directory + "/" + Self.fileName
        lockPath = directory + "/credentials.lock"
        isReplicated = false
        try state.withLock { state throws(SecurityError) in try reload(&state, force: true) }
    }

    /// The credential of `user` for `mechanism`, if any (re-reading the file if it changed).
    public func credential(user: String, mechanism: ScramMechanism) -> ScramCredential? {
        state.withLock { state in
            try? reload(&state, force: false)
            return state.users[user]?[mechanism]
        }
    }

    /// Any credential of `user` (PLAIN checks the password against it).
    public func anyCredential(user: String) -> ScramCredential? {
        credential(user: user, mechanism: .sha512) ?? credential(user: user, mechanism: .sha256)
    }

    /// Every user with their mechanisms, sorted by name.
    public func users() -> [(user: String, credentials: [ScramCredential])] {
        state.withLock { state in
            try? reload(&state, force: false)
            return state.users.keys.sorted().map { user in
                (user, ScramMechanism.allCases.compactMap { state.users[user]?[$0] })
            }
        }
    }

    /// Adds or replaces the credential of `user` for its mechanism.
    public func upsert(user: String, _ credential: ScramCredential) throws(SecurityError) {
        try Self.validate(user: user)
        try change { users throws(SecurityError) in users[user, default: [:]][credential.mechanism] = credential }
    }

    /// Removes `user`'s credential for `mechanism` (every mechanism when nil).
    public func delete(user: String, mechanism: ScramMechanism? = nil) throws(SecurityError) {
        try change { users throws(SecurityError) in
            guard var entry = users[user], mechanism.map({ entry[$0] != nil }) ?? true else {
                throw SecurityError(.unknownUser, "no credential for user \(user)\(mechanism.map { " and \($0.name)" } ?? "")")
            }
            if let mechanism { entry[mechanism] = nil } else { entry = [:] }
            users[user] = entry.isEmpty ? nil : entry
        }
    }

    public static func validate(user: String) throws(SecurityError) {
        guard !user.isEmpty, user.utf8.count <= maxUserNameBytes, !user.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw SecurityError(.invalidCredential, "a user name must be 1 to \(maxUserNameBytes) bytes without newlines or NUL")
        }
    }

    // MARK: The file

    private func change(_ body: (inout [String: [ScramMechanism: ScramCredential]]) throws(SecurityError) -> Void) throws(SecurityError) {
        guard !isReplicated else { throw SecurityError(.storage, "a replicated credential store changes through the cluster (upsertAnywhere, deleteAnywhere)") }
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw SecurityError(.storage, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        flock(lock, LOCK_EX)
        defer { flock(lock, LOCK_UN) }
        try state.withLock { state throws(SecurityError) in
            try reload(&state, force: true)
            var users = state.users
            try body(&users)
            try write(users)
            state.users = users
            state.stamp = stamp()
        }
    }

    private func stamp() -> (Int, Int, Int) {
        var info = stat()
        guard stat(path, &info) == 0 else { return (0, 0, -1) }
        return (Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_size))
    }

    private func reload(_ state: inout State, force: Bool) throws(SecurityError) {
        guard !isReplicated else { return }
        let now = stamp()
        guard force || now != state.stamp else { return }
        state.stamp = now
        guard now.2 >= 0 else {
            state.users = [:]
            return
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecurityError(.storage, "cannot read \(path)")
        }
        let file: CredentialFile
        do {
            file = try JSONDecoder().decode(CredentialFile.self, from: data)
        } catch {
            throw SecurityError(.storage, "\(path) is not a credential file: \(error)")
        }
        var users: [String: [ScramMechanism: ScramCredential]] = [:]
        for (user, entries) in file.users {
            for entry in entries {
                guard let salt = Data(base64Encoded: entry.salt), let stored = Data(base64Encoded: entry.storedKey),
                      let server = Data(base64Encoded: entry.serverKey) else {
                    throw SecurityError(.storage, "\(path): bad base64 for user \(user)")
                }
                users[user, default: [:]][entry.mechanism] = ScramCredential(
                    mechanism: entry.mechanism, salt: Array(salt), iterations: entry.iterations,
                    storedKey: Array(stored), serverKey: Array(server))
            }
        }
        state.users = users
    }

    private func write(_ users: [String: [ScramMechanism: ScramCredential]]) throws(SecurityError) {
        var file = CredentialFile(users: [:])
        for (user, entries) in users {
            file.users[user] = ScramMechanism.allCases.compactMap { entries[$0] }.map {
                .init(mechanism: $0.mechanism, iterations: $0.iterations, salt: Data($0.salt).base64EncodedString(),
                      storedKey: Data($0.storedKey).base64EncodedString(), serverKey: Data($0.serverKey).base64EncodedString())
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(file) } catch { throw SecurityError(.storage, "encoding credentials: \(error)") }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SecurityError(.storage, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw SecurityError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

/// The JSON layout of `credentials.json`.
struct CredentialFile: Codable {
    struct Entry: Codable {
        var mechanism: ScramMechanism
        var iterations: Int
        var salt: String
        var storedKey: String
        var serverKey: String
    }
    var users: [String: [Entry]]
}

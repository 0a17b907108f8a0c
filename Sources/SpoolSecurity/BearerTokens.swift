import Crypto
import Foundation

/// Bearer tokens for the admin HTTP listener (`http.auth.token-file`): one `USER TOKEN`
/// per line (`#` starts a comment), read once at start. A request with
/// `Authorization: Bearer TOKEN` acts as `User:USER`. Only SHA-256 digests of the tokens
/// are kept in memory, compared in constant time.
///
/// ```
/// # http-tokens: scrapers and scripts
/// prometheus 3f5c0a9e1d…
/// ```
public struct BearerTokens: Sendable {
    /// Shortest token accepted (a guessable token is no login).
    public static let minTokenBytes = 16
    /// Largest token file read.
    public static let maxFileBytes = 1 << 20

    private let entries: [(user: String, digest: [UInt8])]

    public var count: Int { entries.count }

    public init(lines text: String, source: String = "token file") throws(SecurityError) {
        var entries: [(String, [UInt8])] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 2, fields[1].utf8.count >= Self.minTokenBytes else {
                throw SecurityError(.invalidCredential, "\(source):\(n + 1): expected 'USER TOKEN' with a token of at least \(Self.minTokenBytes) characters")
            }
            try CredentialStore.validate(user: String(fields[0]))
            entries.append((String(fields[0]), Array(SHA256.hash(data: Array(fields[1].utf8)))))
        }
        self.entries = entries
    }

    /// Reads `path` (see the type's comment).
    public init(file path: String) throws(SecurityError) {
        guard let data = FileManager.default.contents(atPath: path), data.count <= Self.maxFileBytes else {
            throw SecurityError(.storage, "cannot read the token file \(path) (or it is over \(Self.maxFileBytes) bytes)")
        }
        try self.init(lines: String(decoding: data, as: UTF8.self), source: path)
    }

    /// The user whose token this is, if any. Every entry is compared (no early exit).
    public func user(for token: String) -> String? {
        let digest = Array(SHA256.hash(data: Array(token.utf8)))
        var found: String?
        for entry in entries where constantTimeEqual(entry.digest, digest) && found == nil { found = entry.user }
        return found
    }
}

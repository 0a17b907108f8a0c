import Foundation

/// The server side of one SCRAM exchange (RFC 5802, RFC 7677): client-first → server-first,
/// client-final → server-final. No channel binding (gs2 header `n`); the proof is checked in
/// constant time against the stored key.
///
/// ```swift
/// var server = ScramServer(mechanism: .sha256, store: store)
/// let serverFirst = try server.receiveClientFirst(clientFirst)
/// let (serverFinal, principal) = try server.receiveClientFinal(clientFinal)
/// ```
public struct ScramServer: Sendable {
    public let mechanism: ScramMechanism
    private let lookup: @Sendable (String) -> ScramCredential?
    private let serverNonce: String
    private var state: State = .initial
    /// The user the client-first message named (for the log), once read.
    public private(set) var user: String?

    /// Longest SCRAM message accepted.
    public static let maxMessageBytes = 4096
    /// Random bytes in the server's part of the nonce.
    static let nonceBytes = 24

    private enum State: Sendable {
        case initial
        case sentServerFirst(user: String, credential: ScramCredential, gs2Header: String, clientFirstBare: String, serverFirst: String, nonce: String)
        case done
    }

    public init(mechanism: ScramMechanism, store: CredentialStore, serverNonce: String? = nil) {
        self.init(mechanism: mechanism, serverNonce: serverNonce) { [store] user in store.credential(user: user, mechanism: mechanism) }
    }

    /// With a credential lookup of its own (tests, RFC vectors).
    public init(mechanism: ScramMechanism, serverNonce: String? = nil, lookup: @escaping @Sendable (String) -> ScramCredential?) {
        self.mechanism = mechanism
        self.lookup = lookup
        // Alphanumeric, as Kafka's: librdkafka 2.0 (Debian's kcat) mangles a nonce with '+' or '/'.
        self.serverNonce = serverNonce ?? randomBytes(Self.nonceBytes).map { String($0, radix: 16).leftPadded(2) }.joined()
    }

    private func failed(_ why: String) -> SecurityError {
        SecurityError(.authenticationFailed, "Authentication failed during authentication due to invalid credentials with SASL mechanism \(mechanism.name)\(why.isEmpty ? "" : ": \(why)")")
    }

    /// `n,[a=authzid],n=user,r=cnonce[,ext]` → `r=nonce,s=salt,i=iterations`.
    public mutating func receiveClientFirst(_ message: [UInt8]) throws(SecurityError) -> [UInt8] {
        guard case .initial = state else { throw SecurityError(.malformed, "SCRAM client-first received twice") }
        state = .done
        guard message.count <= Self.maxMessageBytes, let text = String(validating: message, as: UTF8.self) else {
            throw SecurityError(.malformed, "SCRAM client-first is not UTF-8 or too long")
        }
        // gs2 header: channel-binding flag, authzid, then the bare message.
        let parts = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SecurityError(.malformed, "SCRAM client-first has no gs2 header") }
        guard parts[0] == "n" else {
            throw SecurityError(.malformed, "SCRAM channel binding is not supported (gs2 flag '\(parts[0])')")
        }
        let authzid: String?
        if parts[1].isEmpty {
            authzid = nil
        } else if parts[1].hasPrefix("a=") {
            authzid = try Self.decodeName(parts[1].dropFirst(2))
        } else {
            throw SecurityError(.malformed, "SCRAM gs2 header: bad authzid")
        }
        let gs2Header = "\(parts[0]),\(parts[1]),"
        let bare = String(parts[2])
        let attributes = try Self.attributes(bare)
        guard attributes.first?.0 == "n", attributes.count >= 2, attributes[1].0 == "r" else {
            throw SecurityError(.malformed, "SCRAM client-first must be n=user,r=nonce")
        }
        if attributes.contains(where: { $0.0 == "m" }) { throw SecurityError(.malformed, "SCRAM mandatory extensions are not supported") }
        let user = try Self.decodeName(Substring(attributes[0].1))
        self.user = user
        let clientNonce = attributes[1].1
        guard !user.isEmpty, !clientNonce.isEmpty, clientNonce.allSatisfy({ $0.isASCII && $0 != "," && $0.asciiValue! >= 0x21 }) else {
            throw SecurityError(.malformed, "SCRAM client-first: empty user or bad nonce")
        }
        if let authzid, authzid != user { throw failed("authorization id \(authzid) is not the user \(user)") }
        guard let credential = lookup(user) else { throw failed("") }
        let nonce = clientNonce + serverNonce
        let serverFirst = "r=\(nonce),s=\(Data(credential.salt).base64EncodedString()),i=\(credential.iterations)"
        state = .sentServerFirst(
            user: user, credential: credential, gs2Header: gs2Header, clientFirstBare: bare, serverFirst: serverFirst, nonce: nonce)
        return Array(serverFirst.utf8)
    }

    /// `c=biws,r=nonce,p=proof` → `v=signature` and the authenticated principal.
    public mutating func receiveClientFinal(_ message: [UInt8]) throws(SecurityError) -> (serverFinal: [UInt8], principal: Principal) {
        guard case .sentServerFirst(let user, let credential, let gs2Header, let clientFirstBare, let serverFirst, let nonce) = state else {
            throw SecurityError(.malformed, "SCRAM client-final out of order")
        }
        state = .done
        guard message.count <= Self.maxMessageBytes, let text = String(validating: message, as: UTF8.self) else {
            throw SecurityError(.malformed, "SCRAM client-final is not UTF-8 or too long")
        }
        let attributes = try Self.attributes(text)
        guard attributes.count >= 3, attributes[0].0 == "c", attributes[1].0 == "r", attributes.last!.0 == "p" else {
            throw SecurityError(.malformed, "SCRAM client-final must be c=…,r=…,p=…")
        }
        guard attributes[0].1 == Data(gs2Header.utf8).base64EncodedString() else {
            throw SecurityError(.malformed, "SCRAM channel binding data does not match the gs2 header")
        }
        // Kafka checks only that the nonce ends with the server-first one: librdkafka up to 2.x
        // sends the client nonce twice (r=cnonce+cnonce+snonce), and Kafka's broker accepts it.
        guard attributes[1].1.hasSuffix(nonce) else { throw failed("nonce mismatch") }
        guard let proof = Data(base64Encoded: attributes.last!.1).map(Array.init), proof.count == mechanism.hashBytes else {
            throw SecurityError(.malformed, "SCRAM client proof is not base64 of \(mechanism.hashBytes) bytes")
        }
        let withoutProof = text[..<text.range(of: ",p=", options: .backwards)!.lowerBound]
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = mechanism.hmac(key: credential.storedKey, authMessage)
        let clientKey = xor(proof, clientSignature)
        guard constantTimeEqual(mechanism.hash(clientKey), credential.storedKey) else { throw failed("") }
        let serverSignature = mechanism.hmac(key: credential.serverKey, authMessage)
        return (Array("v=\(Data(serverSignature).base64EncodedString())".utf8), Principal(name: user))
    }

    /// `k=v,k=v` with single-letter keys.
    static func attributes(_ text: String) throws(SecurityError) -> [(Character, String)] {
        var result: [(Character, String)] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, part.dropFirst().first == "=", let key = part.first, key.isLetter else {
                throw SecurityError(.malformed, "SCRAM attribute '\(part.prefix(32))' is not k=value")
            }
            result.append((key, String(part.dropFirst(2))))
        }
        return result
    }

    /// saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
    static func decodeName(_ name: Substring) throws(SecurityError) -> String {
        var out = ""
        var i = name.startIndex
        while i < name.endIndex {
            if name[i] == "=" {
                let code = name[name.index(after: i)...].prefix(2)
                switch code {
                case "2C": out.append(",")
                case "3D": out.append("=")
                default: throw SecurityError(.malformed, "SCRAM user name has a bad '=' escape")
                }
                i = name.index(i, offsetBy: 3)
            } else {
                out.append(name[i])
                i = name.index(after: i)
            }
        }
        return out
    }

    static func encodeName(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

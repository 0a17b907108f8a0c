import Crypto
import CryptoExtras

/// A SCRAM mechanism (RFC 5802 with RFC 7677's SHA-256, and SHA-512 as Kafka adds it): the
/// hash behind H, HMAC and Hi (PBKDF2).
public enum ScramMechanism: String, Sendable, CaseIterable, Codable {
    case sha256 = "SCRAM-SHA-256"
    case sha512 = "SCRAM-SHA-512"

    /// Fewest PBKDF2 iterations accepted (Kafka's minimum and its CLI's default).
    public static let minIterations = 4096
    /// Most PBKDF2 iterations accepted (Kafka's maximum): more is a denial of service.
    public static let maxIterations = 16384

    /// The SASL mechanism name.
    public var name: String { rawValue }

    /// Kafka's ScramMechanism type in Describe/AlterUserScramCredentials: 1 and 2.
    public var kafkaType: Int8 {
        switch self {
        case .sha256: 1
        case .sha512: 2
        }
    }

    public init?(kafkaType: Int8) {
        switch kafkaType {
        case 1: self = .sha256
        case 2: self = .sha512
        default: return nil
        }
    }

    /// Output bytes of the hash.
    public var hashBytes: Int {
        switch self {
        case .sha256: 32
        case .sha512: 64
        }
    }

    func hash(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }

    func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch self {
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        }
    }

    /// Hi(password, salt, i): PBKDF2 with this hash. SCRAM's iteration counts are far
    /// below what the checked PBKDF2 accepts, hence the unchecked form.
    public func saltedPassword(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let hash: KDF.Insecure.PBKDF2.HashFunction = self == .sha256 ? .sha256 : .sha512
        // Only fails on an output length or round count out of range, which callers exclude.
        let key = try! KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: hash, outputByteCount: hashBytes, unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// Byte-wise XOR of two equal-length arrays.
func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
    precondition(a.count == b.count)
    return zip(a, b).map { $0 ^ $1 }
}

/// Equality in time that depends only on the length (no early exit on the first difference).
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in a.indices { difference |= a[i] ^ b[i] }
    return difference == 0
}

import Foundation

/// The client side of a SCRAM exchange (for the native client and the tests):
/// `clientFirst`, then `receiveServerFirst` gives client-final, then `verifyServerFinal`.
public struct ScramClient: Sendable {
    public let mechanism: ScramMechanism
    let user: String
    let password: String
    let clientNonce: String
    private var clientFirstBare: String
    private var expectedServerSignature: [UInt8]?

    public init(mechanism: ScramMechanism, user: String, password: String, clientNonce: String? = nil) {
        self.mechanism = mechanism
        self.user = user
        self.password = password
        self.clientNonce = clientNonce ?? randomBytes(24).map { String($0, radix: 16).leftPadded(2) }.joined()
        clientFirstBare = "n=\(ScramServer.encodeName(user)),r=\(self.clientNonce)"
    }

    /// `n,,n=user,r=nonce`.
    public var clientFirst: [UInt8] { Array("n,,\(clientFirstBare)".utf8) }

    /// server-first → client-final (`c=biws,r=…,p=…`).
    public mutating func receiveServerFirst(_ message: [UInt8]) throws(SecurityError) -> [UInt8] {
        guard let text = String(validating: message, as: UTF8.self) else { throw SecurityError(.malformed, "server-first is not UTF-8") }
        let attributes = try ScramServer.attributes(text)
        guard attributes.count >= 3, attributes[0].0 == "r", attributes[1].0 == "s", attributes[2].0 == "i",
              attributes[0].1.hasPrefix(clientNonce), let salt = Data(base64Encoded: attributes[1].1),
              let iterations = Int(attributes[2].1),
              (ScramMechanism.minIterations...ScramMechanism.maxIterations).contains(iterations) else {
            throw SecurityError(.malformed, "bad SCRAM server-first: \(text.prefix(100))")
        }
        let salted = mechanism.saltedPassword(Array(password.utf8), salt: Array(salt), iterations: iterations)
        let clientKey = mechanism.hmac(key: salted, Array("Client Key".utf8))
        let storedKey = mechanism.hash(clientKey)
        let withoutProof = "c=biws,r=\(attributes[0].1)"
        let authMessage = Array("\(clientFirstBare),\(text),\(withoutProof)".utf8)
        let proof = xor(clientKey, mechanism.hmac(key: storedKey, authMessage))
        let serverKey = mechanism.hmac(key: salted, Array("Server Key".utf8))
        expectedServerSignature = mechanism.hmac(key: serverKey, authMessage)
        return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
    }

    /// Checks `v=signature` (the server knew the password's keys too).
    public func verifyServerFinal(_ message: [UInt8]) throws(SecurityError) {
        let text = String(decoding: message, as: UTF8.self)
        if text.hasPrefix("e=") { throw SecurityError(.authenticationFailed, "server: \(text.dropFirst(2))") }
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2))),
              let expected = expectedServerSignature, constantTimeEqual(Array(signature), expected) else {
            throw SecurityError(.authenticationFailed, "the server's SCRAM signature does not verify")
        }
    }
}

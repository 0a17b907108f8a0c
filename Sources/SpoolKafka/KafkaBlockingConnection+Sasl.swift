import NIOCore
import SpoolSecurity

extension KafkaBlockingConnection {
    /// Logs in on a SASL listener: SaslHandshake v1, then SaslAuthenticate v1 with PLAIN or
    /// SCRAM-SHA-256/512 (the server's signature checked). Throws with the broker's message
    /// when refused.
    public func authenticate(mechanism: String, user: String, password: String) throws {
        var body = try call(.saslHandshake, version: 1, SaslHandshakeRequest(mechanism: mechanism))
        let handshake = try SaslHandshakeResponse(from: &body, version: 1)
        guard handshake.errorCode == 0 else {
            throw Failure(description: "SASL mechanism \(mechanism) refused (error \(handshake.errorCode)); the listener offers \(handshake.mechanisms.joined(separator: ", "))")
        }
        func step(_ token: [UInt8]) throws -> [UInt8] {
            var body = try call(.saslAuthenticate, version: 1, SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: token)))
            let answer = try SaslAuthenticateResponse(from: &body, version: 1)
            guard answer.errorCode == 0 else {
                throw Failure(description: "authentication as \(user) failed: \(answer.errorMessage ?? "error \(answer.errorCode)")")
            }
            return Array(answer.authBytes.readableBytesView)
        }
        if mechanism == "PLAIN" {
            _ = try step(Array("\0\(user)\0\(password)".utf8))
            return
        }
        guard let scram = ScramMechanism(rawValue: mechanism) else {
            throw Failure(description: "unknown SASL mechanism \(mechanism) (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
        }
        var client = ScramClient(mechanism: scram, user: user, password: password)
        do {
            let serverFirst = try step(client.clientFirst)
            let serverFinal = try step(try client.receiveServerFirst(serverFirst))
            try client.verifyServerFinal(serverFinal)
        } catch let error as SecurityError {
            throw Failure(description: "authentication as \(user) failed: \(error.message)")
        }
    }
}

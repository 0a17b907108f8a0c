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
        do {
            var exchange = try SaslClientExchange(mechanism: mechanism, user: user, password: password)
            var token = exchange.firstToken
            while true {
                var body = try call(.saslAuthenticate, version: 1, SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: token)))
                let answer = try SaslAuthenticateResponse(from: &body, version: 1)
                guard answer.errorCode == 0 else {
                    throw Failure(description: "authentication as \(user) failed: \(answer.errorMessage ?? "error \(answer.errorCode)")")
                }
                guard let next = try exchange.respond(to: Array(answer.authBytes.readableBytesView)) else { return }
                token = next
            }
        } catch let error as SecurityError {
            throw Failure(description: "authentication as \(user) failed: \(error.message)")
        }
    }
}

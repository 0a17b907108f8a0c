/// The client's side of a SASL login, mechanism by mechanism, as tokens: what Kafka's
/// SaslAuthenticate carries. PLAIN is one token; SCRAM is client-first, client-final, then
/// the server's signature checked. Both Kafka clients of the project (the blocking tool
/// connection and the follower's fetch connection) drive it the same way.
///
/// ```swift
/// var exchange = try SaslClientExchange(mechanism: "SCRAM-SHA-512", user: "broker", password: pw)
/// var token = exchange.firstToken
/// while true {
///     let answer = try send(token)                        // one SaslAuthenticate
///     guard let next = try exchange.respond(to: answer) else { break }
///     token = next
/// }
/// ```
public struct SaslClientExchange: Sendable {
    /// The mechanisms a client can log in with.
    public static let mechanisms = ["PLAIN"] + ScramMechanism.allCases.map(\.name)

    public let mechanism: String
    /// The first token to send.
    public let firstToken: [UInt8]
    private var scram: ScramClient?
    private var step = 0

    public init(mechanism: String, user: String, password: String) throws(SecurityError) {
        self.mechanism = mechanism
        if mechanism == "PLAIN" {
            firstToken = Array("\0\(user)\0\(password)".utf8)
            return
        }
        guard let scramMechanism = ScramMechanism(rawValue: mechanism) else {
            throw SecurityError(.malformed, "unknown SASL mechanism \(mechanism) (\(Self.mechanisms.joined(separator: ", ")))")
        }
        let client = ScramClient(mechanism: scramMechanism, user: user, password: password)
        scram = client
        firstToken = client.clientFirst
    }

    /// The next token to send after the server's `answer`, or nil when the login is complete
    /// (for SCRAM, once the server's signature verified).
    public mutating func respond(to answer: [UInt8]) throws(SecurityError) -> [UInt8]? {
        step += 1
        guard var client = scram else { return nil }
        defer { scram = client }
        switch step {
        case 1: return try client.receiveServerFirst(answer)
        case 2:
            try client.verifyServerFinal(answer)
            return nil
        default: throw SecurityError(.malformed, "the server sent more SASL steps than \(mechanism) has")
        }
    }
}

/// Kafka's `security.protocol` of a listener: TLS or not, SASL or not.
public enum KafkaSecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSsl = "SASL_SSL"

    public var usesTLS: Bool { self == .ssl || self == .saslSsl }
    public var usesSASL: Bool { self == .saslPlaintext || self == .saslSsl }

    /// Parses Kafka's `PROTOCOL://host:port` (a bare `host:port` is PLAINTEXT).
    public static func parseListener(_ text: String) -> (protocol: KafkaSecurityProtocol, host: String, port: Int)? {
        var rest = Substring(text)
        var proto = KafkaSecurityProtocol.plaintext
        if let range = text.range(of: "://") {
            guard let p = KafkaSecurityProtocol(rawValue: text[..<range.lowerBound].uppercased()) else { return nil }
            proto = p
            rest = text[range.upperBound...]
        }
        guard let (host, port) = KafkaListenerConfig.parseAddress(String(rest)) else { return nil }
        return (proto, host, port)
    }
}

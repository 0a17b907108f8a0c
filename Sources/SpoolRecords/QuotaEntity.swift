/// Who a client quota applies to: Kafka's entity of a user and a client id, each a name,
/// the default (`<default>`: every user, or every client id, each on its own), or absent.
public struct QuotaEntity: Hashable, Sendable, CustomStringConvertible {
    /// One part of an entity.
    public enum Part: Hashable, Sendable {
        case name(String)
        /// Kafka's `<default>`: applies to each user (or client id) without a quota of its own.
        case defaultEntity
    }

    public var user: Part?
    public var clientId: Part?

    /// At least one part must be present.
    public init(user: Part? = nil, clientId: Part? = nil) {
        precondition(user != nil || clientId != nil, "a quota entity names a user, a client id, or both")
        self.user = user
        self.clientId = clientId
    }

    public var description: String {
        func text(_ part: Part) -> String {
            switch part {
            case .name(let name): return name
            case .defaultEntity: return "<default>"
            }
        }
        return [user.map { "user=" + text($0) }, clientId.map { "client-id=" + text($0) }].compactMap { $0 }.joined(separator: ",")
    }
}

/// The byte rates a quota entity is held to (bytes per second; nil: no limit set here).
public struct QuotaValues: Hashable, Sendable {
    /// Kafka's `producer_byte_rate`: bytes of produce requests' records per second.
    public var producerByteRate: Int64?
    /// Kafka's `consumer_byte_rate`: bytes of fetch responses per second.
    public var consumerByteRate: Int64?

    public init(producerByteRate: Int64? = nil, consumerByteRate: Int64? = nil) {
        self.producerByteRate = producerByteRate
        self.consumerByteRate = consumerByteRate
    }

    public var isEmpty: Bool { producerByteRate == nil && consumerByteRate == nil }
}

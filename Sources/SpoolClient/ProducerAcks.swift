import SpoolProtocol

/// When the broker answers a Produce request: what "acknowledged" means for a record.
/// Kafka: `acks`. Set on ``ProducerConfig/acks``.
///
/// ```swift
/// var config = ProducerConfig()
/// config.acks = .all                          // or ProducerAcks(name: "all")!
/// ```
public enum ProducerAcks: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// At once, before the append: offsets are -1 and a failed append is not reported. Kafka: `acks=0`.
    case none
    /// Once the batch is written to the log (the page cache): it survives the broker
    /// process dying, not the machine losing power. Kafka: `acks=1`, the default.
    case leader
    /// Once the batch is fsynced (appends that arrive together share an fsync). Kafka: `acks=all`.
    case all

    /// Kafka's spellings: `0`, `1`, `all` (or `-1`); nil for anything else.
    public init?(name: String) {
        switch name.lowercased() {
        case "0", "none": self = .none
        case "1", "leader": self = .leader
        case "all", "-1": self = .all
        default: return nil
        }
    }

    /// Kafka's spelling: `0`, `1` or `all`.
    public var description: String {
        switch self {
        case .none: "0"
        case .leader: "1"
        case .all: "all"
        }
    }

    /// The value on the wire.
    var wire: Spool_V1_Acks {
        switch self {
        case .none: .none
        case .leader: .leader
        case .all: .all
        }
    }
}

/// A transactional id's state, as Kafka's coordinator keeps it.
public enum TransactionState: String, Codable, Sendable {
    case empty = "Empty"
    case ongoing = "Ongoing"
    case prepareCommit = "PrepareCommit"
    case prepareAbort = "PrepareAbort"
    case completeCommit = "CompleteCommit"
    case completeAbort = "CompleteAbort"

    /// Whether a new transaction may start (no transaction open or being completed).
    var isIdle: Bool { self == .empty || self == .completeCommit || self == .completeAbort }
    /// Whether markers are being written (EndTxn made it durable, not yet complete).
    var isPreparing: Bool { self == .prepareCommit || self == .prepareAbort }
}

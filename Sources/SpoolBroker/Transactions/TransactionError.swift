/// Why the transaction coordinator refused a request; matched by code (each maps to
/// Kafka's error of the same name).
public struct TransactionError: Error, Sendable, CustomStringConvertible {
    /// The kind of refusal.
    public enum Code: String, Sendable {
        /// `transaction.timeout.ms` is ≤ 0 or above `transaction.max.timeout.ms`.
        case invalidTransactionTimeout
        /// A newer epoch of this transactional id exists (a zombie producer).
        case producerFenced
        /// The producer's epoch is not the coordinator's (non-transactional path).
        case invalidProducerEpoch
        /// The producer id does not belong to this transactional id.
        case invalidProducerIdMapping
        /// The request does not fit the transaction's state.
        case invalidTxnState
        /// A previous transaction of this id is still being completed: retry.
        case concurrentTransactions
        /// The coordinator's state could not be stored.
        case storageFailed
        /// This broker is part of a cluster, where transactions are not supported yet (Kafka's
        /// COORDINATOR_NOT_AVAILABLE; the native TXN_ERROR_UNSUPPORTED).
        case unsupportedInCluster
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

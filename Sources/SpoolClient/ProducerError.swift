/// A failure decided by the producer itself (the broker's own answers arrive as `SpoolStatusError`).
///
/// Match on `code`, never on `message`:
/// ```swift
/// catch let error as ProducerError where error.code == .recordTooLarge { … }
/// ```
public struct ProducerError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Hashable {
        /// The record cannot fit in one batch under the topic's `max.message.bytes`,
        /// the producer's `maxRequestBytes` or the broker's frame limit. Never sent.
        case recordTooLarge
        /// Not acknowledged within `deliveryTimeoutMillis` (retries included).
        case deliveryTimedOut
        /// The producer was closed before the record was queued.
        case closed
        /// An explicit partition the topic does not have.
        case unknownPartition
        /// The topic has no partitions to send to.
        case noPartitions
        /// A newer producer with the same `transactionalId` took over (Kafka's
        /// PRODUCER_FENCED / INVALID_PRODUCER_EPOCH): this producer can send no more; close it.
        case fenced
        /// A transaction call out of order (a send outside a transaction, `beginTransaction`
        /// twice, a commit with none open), or the broker's INVALID_TXN_STATE.
        case transactionState
        /// A record of the open transaction failed (`underlying`): it cannot commit; abort it.
        case transactionFailed
        /// The transaction coordinator refused the call for another reason (`message`
        /// names Kafka's error: INVALID_TRANSACTION_TIMEOUT, INVALID_PRODUCER_ID_MAPPING, …).
        case transactionRefused
    }

    public var code: Code
    public var message: String
    /// The last retriable failure, for `deliveryTimedOut`.
    public var underlying: Error?

    public init(_ code: Code, _ message: String, underlying: Error? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        guard let underlying else { return message }
        return "\(message) (last failure: \(underlying))"
    }
}

/// Why a batch of an idempotent producer was refused. Listeners map the code to
/// their own (Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER 45, DUPLICATE_SEQUENCE_NUMBER 46, INVALID_PRODUCER_EPOCH 47,
/// INVALID_RECORD 87).
public struct ProducerStateError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// The batch does not follow the producer's last sequence (a gap, or a new epoch not starting at 0).
        case outOfOrderSequenceNumber
        /// The batch's sequences were appended before in this epoch, but the partition
        /// no longer remembers their offsets: delivered, offsets unknown.
        case duplicateSequenceNumber
        /// The batch's epoch is older than the producer's current one: a zombie producer.
        case invalidProducerEpoch
        /// A batch with a producer id must carry a sequence ≥ 0 and an epoch ≥ 0.
        case invalidRecord
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

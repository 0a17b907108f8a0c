import Synchronization

/// Hands out producer ids for InitProducerId (idempotent producers, no transactions).
///
/// Ids start from the wall clock in milliseconds, so a restarted broker does not hand
/// out an id a producer of the previous run still holds. Until the core keeps
/// per-producer sequence state, batches are appended whatever their sequence numbers
/// (KAFKA.md: an unknown producer id accepts any sequence).
final class KafkaProducerIds: Sendable {
    private let next: Mutex<Int64>

    init(startingAt first: Int64) {
        precondition(first >= 0)
        next = Mutex(first)
    }

    /// A fresh id at epoch 0, or (v3+, an id the client already holds) the same id with its
    /// epoch bumped; an exhausted epoch gets a fresh id.
    func initProducer(existingId: Int64, existingEpoch: Int16) -> (id: Int64, epoch: Int16) {
        if existingId >= 0 && existingEpoch >= 0 && existingEpoch < Int16.max - 1 {
            return (existingId, existingEpoch + 1)
        }
        let id = next.withLock { value -> Int64 in
            defer { value += 1 }
            return value
        }
        return (id, 0)
    }
}

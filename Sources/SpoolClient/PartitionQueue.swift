import NIOCore

/// One partition's batches inside a producer: the open one, those waiting to be
/// sent, and those waiting to be retried. Guarded by the producer's lock.
///
/// Order: batches of a partition are appended in the order they closed. Requests
/// leave one connection in order and the broker appends a connection's requests in
/// order, so several may be in flight. After a retriable failure the partition
/// sends one request at a time (`retrying`) until a request gets through with
/// nothing left to retry, so a retried batch is never overtaken by a later one.
struct PartitionQueue: Sendable {
    var open: ProducerBatch?
    var ready = CircularBuffer<ProducerBatch>()
    /// Failed batches to resend, sorted by base sequence; they go before `ready`.
    var retries: [ProducerBatch] = []
    /// Requests in flight that carry batches of this partition.
    var inFlight = 0
    /// The broker those requests went to: a new leader gets batches only once they ended,
    /// so that it sees the partition's sequences in order.
    var inFlightNode: Int32 = -1
    var retrying = false
    /// No retry before this (backoff).
    var retryNotBefore = NIODeadline.uptimeNanoseconds(0)
    /// Listed in the producer's `sendable` queue.
    var listed = false
    /// Base sequence of the next batch to close.
    var nextSequence: Int32 = 0

    var hasWork: Bool { !ready.isEmpty || !retries.isEmpty }

    /// Assigns the batch its sequence and queues it.
    mutating func enqueueClosed(_ batch: ProducerBatch) {
        batch.baseSequence = nextSequence
        // Kafka's sequences wrap at Int32.max.
        nextSequence = (nextSequence &+ Int32(batch.recordCount)) & Int32.max
        ready.append(batch)
    }

    /// Starts the partition's sequence again at 0 under a new epoch: every batch still
    /// to send takes the next sequence, in order.
    mutating func resequence(identity: ProducerIdentity) {
        nextSequence = 0
        for batch in retries + Array(ready) {
            batch.restamp(identity: identity, baseSequence: nextSequence)
            nextSequence = (nextSequence &+ Int32(batch.recordCount)) & Int32.max
        }
    }

    /// Puts a failed batch back for another attempt, before every later one.
    mutating func requeueForRetry(_ batch: ProducerBatch) {
        let position = retries.firstIndex { Self.precedes(batch, $0) } ?? retries.endIndex
        retries.insert(batch, at: position)
        retrying = true
    }

    /// Sequence order, allowing for one wrap of the Int32 sequence.
    static func precedes(_ a: ProducerBatch, _ b: ProducerBatch) -> Bool {
        let d = (b.baseSequence &- a.baseSequence) & Int32.max
        return d != 0 && d < (1 << 30)
    }

    /// In retry mode: one batch at a time, with nothing in flight, after the backoff.
    var isSlowed: Bool { retrying || !retries.isEmpty }

    /// Has batches that may be sent now.
    func isSendable(now: NIODeadline) -> Bool {
        hasWork && (!isSlowed || (inFlight == 0 && now >= retryNotBefore))
    }

    /// Takes the batches to put in one request: as many as fit in `budget` (the first
    /// even if it does not, when `takeOneAnyway`), or in retry mode a single one.
    /// Batches past their deadline go to `expired` instead.
    mutating func take(budget: inout Int, takeOneAnyway: Bool, now: NIODeadline, expired: inout [ProducerBatch]) -> [ProducerBatch] {
        guard isSendable(now: now) else { return [] }
        let single = isSlowed
        var taken: [ProducerBatch] = []
        while true {
            let fromRetries = !retries.isEmpty
            guard let batch = fromRetries ? retries.first : ready.first else { break }
            if now >= batch.deadline {
                if fromRetries { retries.removeFirst() } else { ready.removeFirst() }
                expired.append(batch)
                continue
            }
            let size = batch.wireBytesMax
            guard size <= budget || (takeOneAnyway && taken.isEmpty) else { break }
            if fromRetries { retries.removeFirst() } else { ready.removeFirst() }
            budget -= size
            taken.append(batch)
            if single { break }
        }
        if !taken.isEmpty { inFlight += 1 }
        return taken
    }
}

/// What a partition remembers of one idempotent producer: its epoch and its last
/// few batches (sequence ranges and offsets), newest last.
struct ProducerEntry: Hashable {
    /// One remembered batch.
    struct Batch: Hashable {
        var firstSequence: Int32
        var lastSequence: Int32
        var baseOffset: Int64
        var lastOffsetDelta: Int32
    }

    var epoch: Int16
    var batches: [Batch] = []
    /// Newest batch timestamp (the producer's clock, as Kafka uses), for expiry.
    var lastTimestamp: Int64

    var lastSequence: Int32? { batches.last?.lastSequence }

    /// The remembered batch with exactly this sequence range, if any.
    func duplicate(firstSequence: Int32, lastSequence: Int32) -> Batch? {
        batches.first { $0.firstSequence == firstSequence && $0.lastSequence == lastSequence }
    }

    /// Adds a batch; a newer epoch forgets the older epoch's batches.
    mutating func record(epoch: Int16, _ batch: Batch, timestamp: Int64, keep: Int) {
        if epoch != self.epoch {
            self.epoch = epoch
            batches.removeAll()
        }
        batches.append(batch)
        if batches.count > keep { batches.removeFirst(batches.count - keep) }
        lastTimestamp = max(lastTimestamp, timestamp)
    }

    /// The sequence of the last record of a batch: wraps to 0 after `Int32.max`, as Kafka's does.
    static func lastSequence(base: Int32, lastOffsetDelta: Int32) -> Int32 {
        base > Int32.max - lastOffsetDelta ? lastOffsetDelta - (Int32.max - base) - 1 : base + lastOffsetDelta
    }

    /// Whether `next` directly follows `last`.
    static func follows(_ next: Int32, after last: Int32) -> Bool {
        last == Int32.max ? next == 0 : next == last + 1
    }
}

import SpoolRecords
import SpoolStorage
import Synchronization

/// The idempotent-producer state of one partition: per producer id, its epoch and
/// its last batches, checked against every batch a producer sends so that retries
/// are never appended twice.
///
/// Check and append are one step under the table's lock — ``append(_:log:write:)``
/// checks the batches, calls `write` (which appends them to the log) only if they
/// are new, then records them with the offsets they got — so two copies of one
/// batch can never both reach the log. Batches without a producer id (-1) skip
/// the table entirely.
///
/// Rules, as Kafka's broker applies them to a batch of producer P, epoch E, base
/// sequence S:
/// - P unknown (never seen, expired, or older than the scanned log tail): accepted with any S.
/// - E older than P's epoch: `invalidProducerEpoch`.
/// - Same E and a sequence range inside one of P's last 5 runs (batches appended back to
///   back, see ``ProducerEntry``): a duplicate, answered with the original offsets;
///   nothing is written.
/// - Same E and a range appended before but no longer remembered (between the first
///   sequence the table vouches for and the last): `duplicateSequenceNumber` (Kafka's
///   DUPLICATE_SEQUENCE_NUMBER, which clients take as delivered, offsets unknown).
/// - Same E and S ≠ last sequence + 1 (wrapping after `Int32.max`), or a newer E and
///   S ≠ 0: `outOfOrderSequenceNumber`.
///
/// The state is rebuilt, on first use after a restart, from the batch headers in the
/// tail of the partition's log (whatever kind of stop came before: the log itself is
/// the source of truth).
public final class ProducerStateTable: Sendable {
    public let topicPartition: TopicPartition
    let config: ProducerStateConfig
    let clock: @Sendable () -> Int64

    struct State {
        var producers: [Int64: ProducerEntry] = [:]
        var loaded = false
    }

    private let state = Mutex(State())

    init(topicPartition: TopicPartition, config: ProducerStateConfig, clock: @escaping @Sendable () -> Int64) {
        self.topicPartition = topicPartition
        self.config = config
        self.clock = clock
    }

    /// Checks `batches` (validated, not yet offset) against the producers' state; when
    /// they are new, calls `write` to append them to `log` and records them.
    /// Throws ``ProducerStateError`` without calling `write` when a batch is refused.
    public func append(_ batches: ProducedBatches, log: PartitionLog, write: () throws -> AppendResult) throws -> ProducerAppendOutcome {
        try state.withLock { s in
            if !s.loaded {
                try rebuild(&s, from: log)
            }
            if let duplicate = try Self.check(batches, against: s.producers) {
                return duplicate
            }
            let result = try write()
            record(batches, at: result, into: &s)
            return .appended(result)
        }
    }

    /// Producers the partition knows now (for tests and metrics).
    public var producerCount: Int { state.withLock { $0.producers.count } }

    /// The epoch and last sequence remembered for `producerId`, if any.
    public func lastSequence(of producerId: Int64) -> (epoch: Int16, sequence: Int32)? {
        state.withLock { s in
            guard let entry = s.producers[producerId], let sequence = entry.lastSequence else { return nil }
            return (entry.epoch, sequence)
        }
    }

    /// Every producer the partition remembers (DescribeProducers), loading the state
    /// from the log's tail first if no append did yet.
    public func activeProducers(log: PartitionLog) throws -> [ActiveProducer] {
        try state.withLock { s in
            if !s.loaded { try rebuild(&s, from: log) }
            return s.producers.sorted { $0.key < $1.key }.map { id, entry in
                ActiveProducer(producerId: id, producerEpoch: entry.epoch, lastSequence: entry.lastSequence ?? -1,
                               lastTimestamp: entry.lastTimestamp)
            }
        }
    }

    /// Forgets producers whose newest batch is older than the expiration.
    public func expireProducers(nowMillis: Int64) {
        state.withLock { expire(&$0, nowMillis: nowMillis) }
    }

    // MARK: Check and record

    /// `.duplicate` with the original's offsets, nil when every batch is new; throws when one is refused.
    /// Each batch is checked against the state as the batches before it in the request leave it.
    /// A request that repeats appended records must repeat nothing but them, back to back.
    static func check(_ batches: ProducedBatches, against producers: [Int64: ProducerEntry]) throws -> ProducerAppendOutcome? {
        // Producers touched by earlier batches of this request: epoch and last sequence after them.
        var pending: [(producerId: Int64, epoch: Int16, lastSequence: Int32)] = []
        // The request so far repeats these records (offsets, and the last sequence).
        var repeated: (producerId: Int64, base: Int64, last: Int64, lastSequence: Int32)?
        for (i, (_, h)) in batches.batches.enumerated() {
            if let r = repeated {
                let last = ProducerEntry.lastSequence(base: h.baseSequence, lastOffsetDelta: h.lastOffsetDelta)
                guard h.producerId == r.producerId, ProducerEntry.follows(h.baseSequence, after: r.lastSequence),
                      let entry = producers[h.producerId], h.producerEpoch == entry.epoch,
                      let offsets = entry.duplicate(firstSequence: h.baseSequence, lastSequence: last), offsets.base == r.last + 1 else {
                    throw ProducerStateError(.outOfOrderSequenceNumber,
                        "a request that repeats appended batches of producer \(r.producerId) also holds other batches")
                }
                repeated = (r.producerId, r.base, offsets.last, last)
                continue
            }
            guard h.producerId >= 0 else { continue }
            guard h.baseSequence >= 0, h.producerEpoch >= 0 else {
                throw ProducerStateError(.invalidRecord,
                    "batch of producer \(h.producerId) has sequence \(h.baseSequence) and epoch \(h.producerEpoch); both must be ≥ 0")
            }
            let last = ProducerEntry.lastSequence(base: h.baseSequence, lastOffsetDelta: h.lastOffsetDelta)
            let earlier = pending.last { $0.producerId == h.producerId }
            let entry = producers[h.producerId]
            if let known = earlier.map({ ($0.epoch, Optional($0.lastSequence)) }) ?? entry.map({ ($0.epoch, $0.lastSequence) }) {
                let (epoch, lastSequence) = known
                if h.producerEpoch < epoch {
                    throw ProducerStateError(.invalidProducerEpoch,
                        "producer \(h.producerId) sent epoch \(h.producerEpoch), older than its current epoch \(epoch)")
                }
                if earlier == nil, h.producerEpoch == epoch, let entry {
                    if let offsets = entry.duplicate(firstSequence: h.baseSequence, lastSequence: last) {
                        guard i == 0 else {
                            throw ProducerStateError(.outOfOrderSequenceNumber,
                                "producer \(h.producerId) repeats appended sequence \(h.baseSequence) after new batches in one request")
                        }
                        repeated = (h.producerId, offsets.base, offsets.last, last)
                        continue
                    }
                    if entry.wasAppended(firstSequence: h.baseSequence, lastSequence: last) {
                        throw ProducerStateError(.duplicateSequenceNumber,
                            "producer \(h.producerId) sent sequences \(h.baseSequence)...\(last) again; they were appended before, at offsets this partition no longer remembers")
                    }
                }
                if h.producerEpoch > epoch {
                    guard h.baseSequence == 0 else {
                        throw ProducerStateError(.outOfOrderSequenceNumber,
                            "producer \(h.producerId) starts epoch \(h.producerEpoch) at sequence \(h.baseSequence), not 0")
                    }
                } else if let lastSequence, !ProducerEntry.follows(h.baseSequence, after: lastSequence) {
                    throw ProducerStateError(.outOfOrderSequenceNumber,
                        "producer \(h.producerId) sent sequence \(h.baseSequence); expected \(lastSequence == Int32.max ? 0 : lastSequence + 1)")
                }
            }
            pending.append((h.producerId, h.producerEpoch, last))
        }
        if let repeated { return .duplicate(baseOffset: repeated.base, lastOffset: repeated.last) }
        return nil
    }

    /// Records appended batches; their offsets follow from the append's base offset.
    private func record(_ batches: ProducedBatches, at result: AppendResult, into s: inout State) {
        var next = result.baseOffset
        for (_, h) in batches.batches {
            let base = next
            next += Int64(h.recordCount)
            guard h.producerId >= 0 else { continue }
            remember(h, baseOffset: base, in: &s)
        }
        assert(next == result.lastOffset + 1, "recorded offsets \(result.baseOffset)..<\(next) differ from the append's \(result)")
        evictIfFull(&s)
    }

    private func remember(_ h: RecordBatchHeader, baseOffset: Int64, in s: inout State) {
        var entry = s.producers[h.producerId]
            ?? ProducerEntry(epoch: h.producerEpoch, knownFromSequence: h.baseSequence, lastTimestamp: h.maxTimestamp)
        entry.record(epoch: h.producerEpoch, firstSequence: h.baseSequence,
                     lastSequence: ProducerEntry.lastSequence(base: h.baseSequence, lastOffsetDelta: h.lastOffsetDelta),
                     baseOffset: baseOffset, lastOffsetDelta: h.lastOffsetDelta, timestamp: h.maxTimestamp, keep: config.batchesPerProducer)
        s.producers[h.producerId] = entry
    }

    private func evictIfFull(_ s: inout State) {
        while s.producers.count > config.maxProducersPerPartition,
              let oldest = s.producers.min(by: { $0.value.lastTimestamp < $1.value.lastTimestamp })?.key {
            s.producers.removeValue(forKey: oldest)
        }
    }

    // MARK: Rebuild

    /// Replays the producer batches in the log's tail: no checks, as the log already holds them.
    private func rebuild(_ s: inout State, from log: PartitionLog) throws {
        assert(log.topic == topicPartition.topic && log.partition == topicPartition.partition)
        try log.forEachBatchHeader(tailBytesMax: config.rebuildScanBytesMax) { h in
            guard h.producerId >= 0, !h.isControl else { return }
            if let entry = s.producers[h.producerId], h.producerEpoch < entry.epoch { return }
            remember(h, baseOffset: h.baseOffset, in: &s)
        }
        expire(&s, nowMillis: clock())
        evictIfFull(&s)
        s.loaded = true
    }

    private func expire(_ s: inout State, nowMillis: Int64) {
        s.producers = s.producers.filter { $0.value.lastTimestamp + config.producerIdExpirationMillis > nowMillis }
    }
}

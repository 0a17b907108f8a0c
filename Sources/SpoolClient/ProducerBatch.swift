import NIOCore
import SpoolRecords

/// How one record learns its outcome, when it asked to (fire-and-forget records store nothing).
enum RecordCompletion: Sendable {
    case callback(SpoolProducer.Completion)
    case continuation(CheckedContinuation<RecordMetadata, Error>)

    func complete(_ result: Result<RecordMetadata, Error>) {
        switch self {
        case .callback(let callback): callback(result)
        case .continuation(let continuation): continuation.resume(with: result)
        }
    }
}

/// The producer id and epoch an idempotent producer writes into every batch header
/// (with a per-partition base sequence), so that the broker drops a retried
/// duplicate. Nil until the producer has one.
struct ProducerIdentity: Sendable, Equatable {
    var producerId: Int64
    var epoch: Int16
}

/// One partition's batch from its first record until its outcome is known.
///
/// Open: records are encoded into `builder` (guarded by the producer's lock).
/// Closed: queued in its partition, in sequence order. Sealed: compressed into a
/// request payload on the event loop, which also frees the builder; the bytes are
/// kept (`sealed`) only after a failed attempt, so a retry resends exactly them
/// (same producer id, epoch and sequence).
final class ProducerBatch: @unchecked Sendable {
    let topic: ProducerTopic
    let partition: Int32
    var builder: RecordBatchBuilder?
    /// Completions of the records that asked for one, by index in the batch.
    var completions: [(index: Int32, completion: RecordCompletion)] = []
    /// Buffer memory held until the outcome.
    var reservedBytes = 0
    var recordCount = 0
    let openedAt: ContinuousClock.Instant
    var closedAt: ContinuousClock.Instant
    /// Records not acknowledged by then fail (`delivery.timeout.ms`).
    let deadline: NIODeadline
    /// Kafka's base sequence: records of this partition closed before this batch. Orders retries.
    var baseSequence: Int32 = 0
    /// Where the sealed batch sits in the payload of its current request.
    var payloadRange: Range<Int> = 0..<0
    /// The batch's bytes, kept after a failed attempt for the retry.
    var sealed: ByteBuffer?
    var attempts = 0
    var lastError: Error?

    init(topic: ProducerTopic, partition: Int32, builder: RecordBatchBuilder, openedAt: ContinuousClock.Instant, deadline: NIODeadline) {
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.openedAt = openedAt
        self.closedAt = openedAt
        self.deadline = deadline
    }

    /// Upper bound of the batch's bytes on the wire.
    var wireBytesMax: Int {
        if let sealed { return sealed.readableBytes }
        return builder!.maxBuiltBytes
    }

    /// Writes the batch at the end of `payload`: the kept bytes on a retry, else
    /// compresses the records. Returns the builder once it is no longer needed.
    func write(into payload: inout ByteBuffer, identity: ProducerIdentity?) throws -> RecordBatchBuilder? {
        let start = payload.writerIndex
        attempts += 1
        if let sealed {
            payload.writeImmutableBuffer(sealed)
            payloadRange = start..<payload.writerIndex
            return nil
        }
        var b = builder.take()!
        if let identity {
            b.producerId = identity.producerId
            b.producerEpoch = identity.epoch
            b.baseSequence = baseSequence
        }
        do {
            try b.build(into: &payload)
        } catch {
            builder = b
            throw error
        }
        payloadRange = start..<payload.writerIndex
        return b
    }

    /// Moves the batch to a new epoch and sequence (after an epoch bump): the header of
    /// kept bytes is patched and its CRC recomputed; unsealed batches take them when sealed.
    func restamp(identity: ProducerIdentity, baseSequence: Int32) {
        self.baseSequence = baseSequence
        guard var bytes = sealed else { return }
        let start = bytes.readerIndex
        // The id too: past the last epoch InitProducerId hands out a fresh id.
        bytes.setInteger(identity.producerId, at: start + RecordBatchHeader.Position.producerId)
        bytes.setInteger(identity.epoch, at: start + RecordBatchHeader.Position.producerEpoch)
        bytes.setInteger(baseSequence, at: start + RecordBatchHeader.Position.baseSequence)
        RecordBatch.writeCRC(in: &bytes, at: start)
        sealed = bytes
    }

    /// Keeps the bytes sent in `payload` for a retry.
    func keepSealedBytes(from payload: ByteBuffer) {
        if sealed == nil {
            sealed = payload.getSlice(at: payloadRange.lowerBound, length: payloadRange.count)
        }
    }
}

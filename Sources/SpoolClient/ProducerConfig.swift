/// Producer settings, named after Kafka's, with Kafka's defaults where Spool has the same notion.
public struct ProducerConfig: Sendable {
    /// Close a partition's batch at this many (uncompressed) bytes. Kafka: `batch.size`.
    public var batchBytes = 64 << 10
    /// Wait this long for more records before sending a batch. Kafka: `linger.ms`.
    public var lingerMillis = 5
    /// The codec of every batch. Kafka: `compression.type` (whose default is none; lz4 here).
    public var compression: CompressionType = .lz4
    /// When a record counts as acknowledged. Kafka: `acks` (1).
    public var acks: ProducerAcks = .leader
    /// Produce requests in flight at once on the connection (capped by the broker's
    /// handshake limit). Kafka: `max.in.flight.requests.per.connection`.
    public var maxInFlightRequests = 8
    /// Record bytes buffered (open batches and requests in flight) before `send` waits. Kafka: `buffer.memory`.
    public var bufferBytes = 32 << 20
    /// Largest Produce request payload (all its batches); also bounds one record.
    /// Capped by the broker's `maxFrameBytes`. Kafka: `max.request.size`.
    public var maxRequestBytes = 1 << 20
    /// A record fails if it is not acknowledged this long after `send` queued it,
    /// retries included. Kafka: `delivery.timeout.ms` (120 s).
    public var deliveryTimeoutMillis = 120_000
    /// First pause before resending a batch that failed with a retriable error, doubled
    /// per attempt up to `retryBackoffMaxMillis`; also paces reconnects. Kafka: `retry.backoff.ms`.
    public var retryBackoffMillis = 100
    /// Longest pause between attempts. Kafka: `retry.backoff.max.ms`.
    public var retryBackoffMaxMillis = 1_000

    /// Stamp every batch with a producer id, epoch and per-partition base sequence
    /// (from the broker's InitProducerId), so that the broker drops a retried batch it
    /// already appended and answers with the original offsets. Caps requests in flight
    /// at `idempotentInFlightMax` (the broker remembers the last 5 batches per partition).
    /// A batch that fails for good leaves a gap in its partition's sequence: the
    /// producer then waits for its requests in flight, bumps its epoch (InitProducerId
    /// with its id and epoch) and starts every partition's sequence again at 0, as
    /// Kafka's producer does. On by default, as Kafka's `enable.idempotence` since 3.0:
    /// retries never write a batch twice.
    public var idempotent = true

    /// Most requests in flight for an idempotent producer (Kafka: 5).
    public static let idempotentInFlightMax = 5

    /// Makes the producer transactional (Kafka: `transactional.id`): records are sent
    /// between `beginTransaction()` and `commitTransaction()` / `abortTransaction()`, and
    /// read_committed consumers see them only once committed. The id survives restarts:
    /// a new producer with the same id fences the older one (its next send or commit
    /// fails with `ProducerError.Code.fenced`) and aborts a transaction it left open.
    /// Implies `idempotent`.
    public var transactionalId: String?
    /// The longest a transaction may stay open before the broker aborts it (and fences
    /// this producer); at most 15 min. Kafka: `transaction.timeout.ms` (60 s).
    public var transactionTimeoutMillis: Int32 = 60_000

    /// Idempotent batches: asked for, or implied by a transactional id.
    var isIdempotent: Bool { idempotent || transactionalId != nil }

    public init() {}
}

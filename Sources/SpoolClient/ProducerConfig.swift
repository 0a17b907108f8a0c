import SpoolProtocol
import SpoolRecords

/// Producer settings, named after Kafka's, with Kafka's defaults where Spool has the same notion.
public struct ProducerConfig: Sendable {
    /// Close a partition's batch at this many (uncompressed) bytes. Kafka: `batch.size`.
    public var batchBytes = 64 << 10
    /// Wait this long for more records before sending a batch. Kafka: `linger.ms`.
    public var lingerMillis = 5
    public var compression: CompressionCodec = .lz4
    public var acks: Spool_V1_Acks = .leader
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

    public init() {}
}

/// Limits of the idempotent-producer state, with Kafka's values where Kafka has one.
public struct ProducerStateConfig: Sendable {
    /// Runs of batches (a request's batches, appended back to back) remembered per
    /// producer and partition for duplicate detection (Kafka: 5 batches, which is why
    /// producers keep at most 5 requests in flight; Kafka's clients send one batch per
    /// partition per request, Spool's several).
    public var batchesPerProducer = 5
    /// Producers remembered per partition; beyond it the least recently active one is
    /// forgotten (its next batch is then accepted with any sequence, as Kafka accepts
    /// an unknown producer).
    public var maxProducersPerPartition = 10_000
    /// A producer with no batch for this long is forgotten (`producer.id.expiration.ms`, 1 day).
    public var producerIdExpirationMillis: Int64 = 86_400_000
    /// How much of a partition's log tail is read (batch headers only) to rebuild its
    /// producer state after a restart. Producers whose last batch is older are unknown.
    public var rebuildScanBytesMax: Int64 = 256 << 20
    /// Producer ids reserved per durable write of the id file.
    public var producerIdBlockSize: Int64 = 1_000

    public init() {}
}

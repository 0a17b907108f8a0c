/// The outcome of one batch: its records took offsets `baseOffset ..< baseOffset + recordCount`
/// of `partition`, or all failed with `error`.
///
/// Delivered once per batch to the producer's `onDelivery` handler, which is how
/// fire-and-forget senders (`trySend`, `send(_:key:value:)` with a topic handle)
/// learn outcomes without a closure per record.
public struct DeliveryReport: Sendable {
    public var topic: String
    public var partition: Int32
    /// Offset of the batch's first record; -1 when the batch failed.
    public var baseOffset: Int64
    public var recordCount: Int
    /// Why the batch failed (a `ProducerError` or the broker's `SpoolStatusError`); nil on success.
    public var error: Error?
    /// When the batch took its first record.
    public var openedAt: ContinuousClock.Instant
    /// When the batch stopped taking records (full, lingered, or flushed).
    public var closedAt: ContinuousClock.Instant
    /// Sends it took (1 unless retried).
    public var attempts: Int
}

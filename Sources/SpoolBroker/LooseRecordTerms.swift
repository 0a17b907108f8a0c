import SpoolRecords

/// What a listener needs to know of a topic to place and check loose records (the
/// native ProduceRecords) before any is handed to the core's accumulator.
public struct LooseRecordTerms: Sendable, Hashable {
    /// Partitions of the topic now.
    public var partitions: Int32
    /// The codec the accumulator compresses the topic's batches with.
    public var codec: CompressionCodec
    /// How long the accumulator keeps a batch open (`linger.ms`).
    public var lingerMillis: Int64
    /// Largest batch the topic accepts (`max.message.bytes`).
    public var maxMessageBytes: Int
    /// Largest distance between a record's create time and the broker's clock
    /// (`message.timestamp.difference.max.ms`; `.max`: no limit).
    public var timestampDifferenceMaxMillis: Int64
}

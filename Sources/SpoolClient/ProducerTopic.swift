import SpoolProtocol

/// A topic resolved once by a producer (`try await producer.topic("events")`).
///
/// Sends through a handle skip the lookup by name (no string hashing per record)
/// and carry the limits learnt for the topic. A handle belongs to the producer that
/// made it.
public final class ProducerTopic: Sendable {
    public let name: String
    public let partitionCount: Int32
    /// Largest record (encoded: key, value, headers and framing) one batch of this
    /// topic can carry; a larger one fails with `ProducerError.Code.recordTooLarge`.
    public let maxRecordBytes: Int
    /// Largest uncompressed batch (header and records) the producer builds for it.
    let batchBytesMax: Int
    /// Position in the producer's topic table.
    let index: Int
    let owner: ObjectIdentifier

    init(name: String, partitionCount: Int32, limits: ProducerLimits, index: Int, owner: ObjectIdentifier) {
        self.name = name
        self.partitionCount = partitionCount
        self.maxRecordBytes = limits.recordBytesMax
        self.batchBytesMax = limits.batchBytesMax
        self.index = index
        self.owner = owner
    }
}

/// What `Broker.openSpan(_:budget:)` made of a planned partition.
public enum SpanOpening: Sendable {
    /// Nothing to send: no span was planned, or the partition failed.
    case nothing
    /// The batches, ready to write; `FetchedSpan.close()` once written.
    case opened(FetchedSpan)
    /// The connection holds every span descriptor its budget allows: an earlier answer of
    /// it must be written first (or the partition answers without records this time).
    case noDescriptor
    /// The segment could not be opened (no descriptor left in the process, or retention
    /// deleted it after planning): the partition reports the error.
    case failed(BrokerError)
}

import SpoolStorage

/// A span of whole batches the core planned to send, not yet opened: the partition's
/// log (to open the span's descriptor from) and where the batches are in it.
struct PlannedSpan: Sendable {
    let log: PartitionLog
    let span: FileSpan
}

/// A partition's offsets as the core reports them to listeners, read together.
public struct PartitionOffsets: Sendable, Hashable {
    /// First offset still in the log.
    public var logStartOffset: Int64
    /// Offset the next record will get (log end offset).
    public var logEndOffset: Int64
    /// Offsets below it are readable by consumers (on a single node, the log end).
    public var highWatermark: Int64

    public init(logStartOffset: Int64, logEndOffset: Int64, highWatermark: Int64) {
        self.logStartOffset = logStartOffset
        self.logEndOffset = logEndOffset
        self.highWatermark = highWatermark
    }
}

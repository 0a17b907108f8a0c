import SpoolStorage

/// What an append through the producer state did.
public enum ProducerAppendOutcome: Hashable, Sendable {
    /// The batches were written at these offsets.
    case appended(AppendResult)
    /// A retry of a batch already in the log: nothing was written. The producer is
    /// answered with success and the offsets the original got.
    case duplicate(baseOffset: Int64, lastOffset: Int64)

    /// Offset of the first record (of the original, for a duplicate).
    public var baseOffset: Int64 {
        switch self {
        case .appended(let r): r.baseOffset
        case .duplicate(let base, _): base
        }
    }

    /// Offset of the last record (of the original, for a duplicate).
    public var lastOffset: Int64 {
        switch self {
        case .appended(let r): r.lastOffset
        case .duplicate(_, let last): last
        }
    }
}

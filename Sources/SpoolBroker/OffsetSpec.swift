/// Which offset a ListOffsets lookup asks for.
public enum OffsetSpec: Sendable, Hashable {
    /// The log start offset.
    case earliest
    /// The log end offset (high watermark).
    case latest
    /// The earliest offset whose timestamp is at or after this time (ms since the epoch).
    case timestamp(Int64)
}

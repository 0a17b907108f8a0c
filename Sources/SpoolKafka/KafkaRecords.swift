import NIOCore

/// The value of a `records` field: raw record batches.
///
/// Decoding yields `.buffer`, a slice of the received bytes (no copy). When encoding
/// a Fetch response, the listener supplies `.deferred(byteCount:)` instead: the
/// writer emits the length prefix and records a `KafkaWriter.DeferredSpan`, and the
/// caller sends exactly `byteCount` bytes (segment spans, with `sendfile`) at that
/// point of the response.
public enum KafkaRecords: Hashable, Sendable {
    case buffer(ByteBuffer)
    case deferred(byteCount: Int)

    /// The number of bytes the field's value occupies on the wire (without its prefix).
    public var byteCount: Int {
        switch self {
        case .buffer(let buffer): buffer.readableBytes
        case .deferred(let byteCount): byteCount
        }
    }
}

import NIOCore
import SpoolBroker

/// One answer as a listener hands it to its `TransportHandler`: bytes, with spans of
/// batches spliced in at positions in them (each sent as a `FileRegion`, so `sendfile`).
/// The handler writes the pieces in order, counts them in the connection's outbound
/// ledger until the last byte is written, then closes the spans.
///
/// ```swift
/// // A native frame: header and message, then the payload's spans.
/// context.write(wrapOutboundOut(Transmission(header, trailing: spans)), promise: written)
/// ```
public struct Transmission: Sendable {
    /// A span and where it goes: before the byte at `position` of `bytes` (relative to
    /// its reader index).
    public struct Splice: Sendable {
        public var position: Int
        public var span: FetchedSpan

        public init(position: Int, span: FetchedSpan) {
            self.position = position
            self.span = span
        }
    }

    public var bytes: ByteBuffer
    /// In ascending `position` order.
    public var splices: [Splice]

    /// Bytes only.
    public init(_ bytes: ByteBuffer) {
        self.bytes = bytes
        splices = []
    }

    /// Bytes with spans spliced in at positions (ascending, within `bytes`).
    public init(_ bytes: ByteBuffer, splices: [Splice]) {
        precondition(zip(splices, splices.dropFirst()).allSatisfy { $0.position <= $1.position }, "splices in ascending order")
        precondition(splices.allSatisfy { $0.position >= 0 && $0.position <= bytes.readableBytes }, "splices within the bytes")
        self.bytes = bytes
        self.splices = splices
    }

    /// Bytes followed by `spans`, in order.
    public init(_ bytes: ByteBuffer, trailing spans: [FetchedSpan]) {
        self.init(bytes, splices: spans.map { Splice(position: bytes.readableBytes, span: $0) })
    }

    /// Everything this puts on the wire.
    public var byteCount: Int { splices.reduce(bytes.readableBytes) { $0 + $1.span.byteCount } }

    /// Closes every span (written, or never to be).
    public func closeSpans() {
        for splice in splices { splice.span.close() }
    }
}

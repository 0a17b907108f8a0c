import NIOConcurrencyHelpers
import NIOCore
import SpoolRecords

/// Whole batches of one partition, opened by the core for sending: a `FileRegion` over
/// the core's own duplicate of the segment's descriptor (it stays readable if retention
/// deletes the segment meanwhile), holding one span descriptor of the connection's
/// `ConnectionBudget`.
///
/// Whoever writes it calls ``close()`` once the write completed or failed (or when it
/// will never be written): that closes the descriptor and gives the span descriptor back.
/// `close()` is idempotent; a span must not be written after it.
///
/// ```swift
/// if case .opened(let span) = broker.openSpan(planned, budget: budget) {
///     context.write(wrapOutboundOut(.fileRegion(span.region))).whenComplete { _ in span.close() }
/// }
/// ```
public final class FetchedSpan: Sendable {
    public let topicPartition: TopicPartition
    /// The bytes, for `sendfile`.
    public let region: FileRegion
    /// Offset of the first batch in the span.
    public let firstOffset: Int64
    /// Offset just after the last batch: where the next read starts.
    public let nextOffset: Int64
    private let handle: NIOLockedValueBox<NIOFileHandle?>
    private let budget: ConnectionBudget

    /// Bytes of the span.
    public var byteCount: Int { region.readableBytes }

    init(topicPartition: TopicPartition, descriptor: Int32, position: Int64, length: Int,
         firstOffset: Int64, nextOffset: Int64, budget: ConnectionBudget) {
        self.topicPartition = topicPartition
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        self.handle = NIOLockedValueBox(handle)
        region = FileRegion(fileHandle: handle, readerIndex: Int(position), endIndex: Int(position) + length)
        self.firstOffset = firstOffset
        self.nextOffset = nextOffset
        self.budget = budget
    }

    /// Closes the descriptor and returns the span descriptor to the connection's budget.
    public func close() {
        let open = handle.withLockedValue { h -> NIOFileHandle? in
            defer { h = nil }
            return h
        }
        guard let open else { return }
        try? open.close()
        budget.releaseSpanDescriptor()
    }

    /// True until ``close()``.
    public var isOpen: Bool { handle.withLockedValue { $0 != nil } }
}

import NIOConcurrencyHelpers

/// One connection's share of the `ResourceBudgets`: the span descriptors its responses
/// hold, the bytes queued for writing, and the bytes of the unfinished frame it is
/// sending. Every connection may always hold one span descriptor (it was counted when the
/// connection was admitted), so no other client can starve it; more are borrowed from the
/// shared pool, up to `spanDescriptorsPerConnectionMax`.
///
/// `close()` (when the connection closes) gives everything back at once; later releases
/// of what it held are ignored.
public final class ConnectionBudget: Sendable {
    private struct State {
        var spanDescriptors = 0
        var outboundBytes = 0
        var inboundReserved = 0
        var inboundFrameOpen = false
        var closed = false
    }

    public let budgets: ResourceBudgets
    private let state = NIOLockedValueBox(State())

    init(budgets: ResourceBudgets) {
        self.budgets = budgets
    }

    // MARK: Span descriptors

    /// Takes one span descriptor for a response; false when the connection is at its limit
    /// (or the shared pool is empty): the response waits for one of its earlier ones.
    public func acquireSpanDescriptor() -> Bool {
        state.withLockedValue { s in
            if s.closed { return false }
            if s.spanDescriptors == 0 {
                s.spanDescriptors = 1 // the guaranteed one
                return true
            }
            guard s.spanDescriptors < budgets.config.spanDescriptorsPerConnectionMax, budgets.takeSharedSpan() else { return false }
            s.spanDescriptors += 1
            return true
        }
    }

    /// Gives back a span descriptor once its response is written (or failed).
    public func releaseSpanDescriptor() {
        let borrowed = state.withLockedValue { s -> Bool in
            guard !s.closed else { return false }
            precondition(s.spanDescriptors > 0, "span descriptor released twice")
            s.spanDescriptors -= 1
            return s.spanDescriptors >= 1
        }
        if borrowed { budgets.returnSharedSpans(1) }
    }

    /// Span descriptors held now.
    public var spanDescriptors: Int { state.withLockedValue { $0.spanDescriptors } }

    // MARK: Outbound bytes

    /// Counts bytes queued for writing.
    public func addOutbound(_ bytes: Int) {
        state.withLockedValue { $0.outboundBytes += bytes }
    }

    /// Counts bytes written (or dropped with the connection).
    public func removeOutbound(_ bytes: Int) {
        state.withLockedValue { s in
            s.outboundBytes -= bytes
            assert(s.outboundBytes >= 0 || s.closed, "more bytes written than queued")
        }
    }

    /// Bytes queued for writing now.
    public var outboundBytes: Int { state.withLockedValue { $0.outboundBytes } }

    /// True while the connection has more queued for writing than its budget allows:
    /// the listener reads no more of its requests.
    public var isOverOutboundBudget: Bool {
        state.withLockedValue { $0.outboundBytes > budgets.config.outboundBytesPerConnectionMax }
    }

    // MARK: Inbound bytes

    /// Reserves room for the unfinished frame of `bytes` the connection is sending (a
    /// connection has at most one: frames arrive one after another). A frame of up to
    /// `inboundFrameBytesGuaranteed` needs no room in the shared budget (every connection
    /// may buffer one such frame, so a full budget never blocks small calls). False: the
    /// broker-wide inbound budget has no room, refuse the frame.
    public func reserveInbound(_ bytes: Int) -> Bool {
        state.withLockedValue { s in
            if s.closed { return false }
            precondition(!s.inboundFrameOpen, "a connection reserves one unfinished frame at a time")
            if bytes > budgets.config.inboundFrameBytesGuaranteed {
                guard budgets.reserveInbound(bytes) else { return false }
                s.inboundReserved = bytes
            }
            s.inboundFrameOpen = true
            return true
        }
    }

    /// Releases the reservation once the frame is complete (or dropped).
    public func releaseInbound() {
        let bytes = state.withLockedValue { s -> Int in
            defer {
                s.inboundReserved = 0
                s.inboundFrameOpen = false
            }
            return s.closed ? 0 : s.inboundReserved
        }
        budgets.releaseInbound(bytes)
    }

    /// True while an unfinished frame holds a reservation.
    public var hasInboundReservation: Bool { state.withLockedValue { $0.inboundFrameOpen } }

    // MARK: Lifecycle

    /// Gives back the connection slot and everything it still holds. Idempotent.
    public func close() {
        let held = state.withLockedValue { s -> (spans: Int, inbound: Int)? in
            guard !s.closed else { return nil }
            s.closed = true
            defer {
                s.spanDescriptors = 0
                s.inboundReserved = 0
                s.inboundFrameOpen = false
            }
            return (max(0, s.spanDescriptors - 1), s.inboundReserved)
        }
        guard let held else { return }
        budgets.returnSharedSpans(held.spans)
        budgets.releaseInbound(held.inbound)
        budgets.releaseConnection()
    }
}

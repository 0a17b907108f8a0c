import NIOCore
import SpoolBroker

/// A frame decoder's side of the broker's inbound budget, the same for every listener:
/// a frame that is not complete in the bytes received so far reserves its whole length
/// (known from its length field, checked against the frame limit first) in the
/// connection's `ConnectionBudget` before more of it is buffered, and announces itself
/// (`FrameProgress`) to the `TransportHandler`, which drops a sender that does not finish
/// in time. Without a budget (tests of the codec alone) it does nothing.
public struct InboundFrameBudget: Sendable {
    public let budget: ConnectionBudget?

    public init(_ budget: ConnectionBudget?) {
        self.budget = budget
    }

    /// A whole frame was decoded: releases its reservation, if it had one.
    public func frameCompleted(context: ChannelHandlerContext) {
        guard let budget, budget.hasInboundReservation else { return }
        budget.releaseInbound()
        context.fireUserInboundEventTriggered(FrameProgress.completed)
    }

    /// The next frame, of `bytes` in all, is incomplete: reserves room for it once. False
    /// when the broker-wide budget has no room: the decoder refuses the frame.
    public func frameIncomplete(bytes: Int, context: ChannelHandlerContext) -> Bool {
        guard let budget, !budget.hasInboundReservation else { return true }
        // A refusal is counted by the budget (`framesRefused`).
        guard budget.reserveInbound(bytes) else { return false }
        context.fireUserInboundEventTriggered(FrameProgress.started(bytes: bytes))
        return true
    }

    /// The decoder is gone, or the peer left mid-frame: drops any reservation.
    public func release() {
        budget?.releaseInbound()
    }

    /// The budget's inbound limit over all connections, for refusal messages.
    public var inboundBytesMax: Int { budget?.budgets.config.inboundBufferedBytesMax ?? 0 }
}

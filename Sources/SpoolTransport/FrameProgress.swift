/// Sent down a pipeline by a listener's frame decoder (through `InboundFrameBudget`) when
/// a frame it cannot decode yet starts (its whole length now reserved in the inbound
/// budget) and when that frame completes. The `TransportHandler` behind the decoder
/// times it: a frame not completed within `frameCompletionSeconds` drops its sender.
public enum FrameProgress: Sendable, Equatable {
    case started(bytes: Int)
    case completed
}

/// What a `TransportHandler` tells the protocol handler behind it (inbound user events).
public enum TransportEvent: Sendable, Equatable {
    /// A frame of `bytes` was not completed within `seconds` while the broker was
    /// reading: the sender is too slow. The protocol handler says why (if its protocol
    /// can) and closes the connection; the transport already counted the drop.
    case frameTimedOut(bytes: Int, seconds: Int64)
    /// Writes completed since the last such event (their spans are closed, their bytes
    /// counted off): room may have freed for deferred answers and streams.
    /// `spansClosed`: at least one of them closed spans (span descriptors came back).
    case writesCompleted(spansClosed: Bool)
}

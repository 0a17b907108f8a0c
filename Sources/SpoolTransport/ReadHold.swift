/// Why a listener's protocol handler wants its connection's requests not read for now,
/// beside the reasons the `TransportHandler` sees itself (an unwritable socket, too many
/// bytes queued). Sent as an outbound user event (`ReadHold.Change`); reads resume once
/// no reason is left. While reads are held, a frame still in progress is not the
/// sender's fault, so its completion deadline is extended.
public enum ReadHold: Hashable, Sendable {
    /// Answers wait for a span descriptor of the connection (native fetches).
    case answersWaiting
    /// The protocol's limit of requests read and not yet answered (Kafka's in-flight
    /// bound: its answers go out in request order).
    case requestsInFlight

    /// Holds (`held: true`) or releases a reason.
    public struct Change: Sendable, Equatable {
        public var reason: ReadHold
        public var held: Bool

        public init(_ reason: ReadHold, held: Bool) {
            self.reason = reason
            self.held = held
        }
    }
}

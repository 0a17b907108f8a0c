import NIOCore
import SpoolBroker

/// What the connection does for one request, in request order.
enum KafkaReply: Sendable {
    /// Send this response; `spans` are the deferred records in the order of
    /// `frame.deferredSpans` (sent with sendfile), closed once it is written.
    case response(KafkaResponseFrame, spans: [FetchedSpan] = [])
    /// Send nothing (Produce with acks=0).
    case noResponse
    /// Close the connection once the earlier responses are written (a request that
    /// cannot be decoded: Kafka's broker closes too).
    case close(reason: String)
    /// Send this response, then close once it is written (SASL refusals).
    case responseThenClose(KafkaResponseFrame, reason: String)
}

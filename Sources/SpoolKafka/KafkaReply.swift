import NIOCore

/// What the connection does for one request, in request order.
enum KafkaReply: Sendable {
    /// Send this response; `regions` are the deferred records in the order of
    /// `frame.deferredSpans` (sent with sendfile); `handles` are closed once it is written.
    case response(KafkaResponseFrame, regions: [FileRegion] = [], handles: [NIOFileHandle] = [])
    /// Send nothing (Produce with acks=0).
    case noResponse
    /// Close the connection once the earlier responses are written (a request that
    /// cannot be decoded: Kafka's broker closes too).
    case close(reason: String)
}

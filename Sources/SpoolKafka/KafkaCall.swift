import NIOCore
import SpoolSecurity

/// One request being answered: its header, where it came from, and its event loop.
struct KafkaCall: Sendable {
    let header: KafkaRequestHeader
    let api: KafkaApiKey
    let clientHost: String
    /// Who sent it (for authorization).
    let principal: Principal
    let eventLoop: EventLoop

    var version: Int16 { header.apiVersion }

    func respond<M: KafkaMessage>(_ body: M) -> KafkaReply {
        .response(KafkaResponseFrame.encode(body, correlationId: header.correlationId, api: api, version: version))
    }
}

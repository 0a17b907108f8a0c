import NIOCore
import SpoolBroker

/// One request being answered: its header, where it came from, and its event loop.
struct KafkaCall: Sendable {
    let header: KafkaRequestHeader
    let api: KafkaApiKey
    let clientHost: String
    let eventLoop: EventLoop

    var version: Int16 { header.apiVersion }

    /// The user client quotas are looked up for (Kafka's `ANONYMOUS` until SASL names one).
    var quotaUser: String { ClientQuotaManager.anonymousUser }

    /// `reply`, held for `millis` first (a client over its quota); at once when 0.
    func held(_ reply: KafkaReply, millis: Int64) -> EventLoopFuture<KafkaReply> {
        guard millis > 0 else { return eventLoop.makeSucceededFuture(reply) }
        return eventLoop.scheduleTask(in: .milliseconds(millis)) { reply }.futureResult
    }

    func respond<M: KafkaMessage>(_ body: M) -> KafkaReply {
        .response(KafkaResponseFrame.encode(body, correlationId: header.correlationId, api: api, version: version))
    }
}

import NIOCore
import SpoolBroker
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

    /// Who asks, for the authorizer: the principal and the client's address (`clientHost`
    /// without Kafka's leading '/', as ACL hosts are written).
    var identity: AccessIdentity {
        AccessIdentity(principal: principal.description, host: clientHost.hasPrefix("/") ? String(clientHost.dropFirst()) : clientHost)
    }

    /// The user client quotas are looked up for: the SASL user (Kafka's `ANONYMOUS` without one).
    var quotaUser: String { principal == .anonymous ? ClientQuotaManager.anonymousUser : principal.name }

    /// `reply`, held for `millis` first (a client over its quota); at once when 0.
    func held(_ reply: KafkaReply, millis: Int64) -> EventLoopFuture<KafkaReply> {
        guard millis > 0 else { return eventLoop.makeSucceededFuture(reply) }
        return eventLoop.scheduleTask(in: .milliseconds(millis)) { reply }.futureResult
    }

    func respond<M: KafkaMessage>(_ body: M) -> KafkaReply {
        .response(KafkaResponseFrame.encode(body, correlationId: header.correlationId, api: api, version: version))
    }
}

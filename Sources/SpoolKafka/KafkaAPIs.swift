import NIOCore
import SpoolBroker
import SpoolSecurity

/// The Kafka APIs over the broker core: decodes a request frame, calls the core, and
/// encodes the answer. One per connection (it carries the advertised address).
///
/// Requests it cannot decode are answered as Kafka's broker does: an unknown API key or
/// an unsupported version gets UNSUPPORTED_VERSION (ApiVersions: in the v0 layout with
/// the supported list, KAFKA.md pitfall 3); a malformed body closes the connection.
struct KafkaAPIs: Sendable {
    let broker: Broker
    let config: KafkaListenerConfig
    let advertisedHost: String
    let advertisedPort: Int32
    /// The connection's share of the broker's budgets (span descriptors).
    let budget: ConnectionBudget

    /// A started request: its answer, and the long poll behind it when it is a Fetch.
    struct Started {
        var reply: EventLoopFuture<KafkaReply>
        var fetch: PendingFetch?
    }

    func handle(_ frame: ByteBuffer, clientHost: String, principal: Principal = .anonymous, eventLoop: EventLoop) -> Started {
        var reader = KafkaReader(frame)
        let header: KafkaRequestHeader
        do {
            header = try KafkaRequestHeader.decode(from: &reader)
        } catch {
            return Started(reply: eventLoop.makeSucceededFuture(.close(reason: "bad request header: \(error)")))
        }
        guard let api = header.api, header.isSupported else {
            let reply: KafkaReply
            if header.api == .apiVersions {
                // Answered in the v0 layout, which every client can read, with the list to retry from.
                let body = apiVersionsResponse(errorCode: .unsupportedVersion)
                reply = .response(KafkaResponseFrame.encode(body, correlationId: header.correlationId, api: .apiVersions, version: 0))
            } else {
                reply = .response(KafkaResponseFrame.unsupportedVersion(correlationId: header.correlationId))
            }
            return Started(reply: eventLoop.makeSucceededFuture(reply))
        }
        let request: KafkaRequest
        do {
            if api.isFlexible(header.apiVersion) { try KafkaRequestHeader.skipTagSection(from: &reader) }
            request = try KafkaRequest.decode(apiKey: api, version: header.apiVersion, from: &reader)
        } catch {
            return Started(reply: eventLoop.makeSucceededFuture(.close(reason: "malformed \(api.name) v\(header.apiVersion): \(error)")))
        }
        let call = KafkaCall(header: header, api: api, clientHost: clientHost, principal: principal, eventLoop: eventLoop)
        return dispatch(request, call)
    }

    private func dispatch(_ request: KafkaRequest, _ call: KafkaCall) -> Started {
        func now<M: KafkaMessage>(_ body: M) -> Started { Started(reply: call.eventLoop.makeSucceededFuture(call.respond(body))) }
        func later<M: KafkaMessage>(_ body: EventLoopFuture<M>) -> Started { Started(reply: body.map { call.respond($0) }) }
        switch request {
        case .apiVersions:
            return now(apiVersionsResponse(errorCode: .none))
        case .saslHandshake:
            // SASL is not enabled on this listener (a SASL listener answers in KafkaSaslGate): no
            // mechanism is offered (clients report "no SASL mechanisms").
            return now(SaslHandshakeResponse(errorCode: KafkaErrorCode.unsupportedSaslMechanism.rawValue, mechanisms: []))
        case .saslAuthenticate:
            return now(SaslAuthenticateResponse(
                errorCode: KafkaErrorCode.illegalSaslState.rawValue, errorMessage: "SASL is not enabled on this listener"))
        case .describeUserScramCredentials(let r): return now(describeUserScramCredentials(r, call))
        case .alterUserScramCredentials(let r): return later(alterUserScramCredentials(r, call))
        case .metadata(let r): return later(metadata(r, call))
        case .produce(let r): return Started(reply: produce(r, call))
        case .fetch(let r): return fetch(r, call)
        case .listOffsets(let r): return now(listOffsets(r, call))
        case .deleteRecords(let r): return later(deleteRecords(r, call))
        case .findCoordinator(let r): return now(findCoordinator(r, call))
        case .createTopics(let r): return later(createTopics(r, call))
        case .deleteTopics(let r): return later(deleteTopics(r, call))
        case .createPartitions(let r): return later(createPartitions(r, call))
        case .describeConfigs(let r): return now(describeConfigs(r, call))
        case .alterConfigs(let r): return later(alterConfigs(r, call))
        case .incrementalAlterConfigs(let r): return later(incrementalAlterConfigs(r, call))
        case .initProducerId(let r): return later(initProducerId(r, call))
        case .joinGroup(let r): return later(joinGroup(r, call))
        case .syncGroup(let r): return later(syncGroup(r, call))
        case .heartbeat(let r): return now(heartbeat(r, call))
        case .leaveGroup(let r): return now(leaveGroup(r, call))
        case .offsetCommit(let r): return later(offsetCommit(r, call))
        case .offsetFetch(let r): return now(offsetFetch(r, call))
        case .listGroups(let r): return now(listGroups(r, call))
        case .describeGroups(let r): return now(describeGroups(r, call))
        case .deleteGroups(let r): return later(deleteGroups(r, call))
        case .offsetDelete(let r): return later(offsetDelete(r, call))
        case .offsetForLeaderEpoch(let r): return now(offsetForLeaderEpoch(r, call))
        case .describeLogDirs(let r): return now(describeLogDirs(r, call))
        case .describeProducers(let r): return later(describeProducers(r, call))
        case .describeClientQuotas(let r): return now(describeClientQuotas(r, call))
        case .alterClientQuotas(let r): return later(alterClientQuotas(r, call))
        case .addPartitionsToTxn(let r): return now(addPartitionsToTxn(r, call))
        case .addOffsetsToTxn(let r): return now(addOffsetsToTxn(r, call))
        case .txnOffsetCommit(let r): return now(txnOffsetCommit(r, call))
        case .endTxn(let r): return later(endTxn(r, call))
        case .createAcls(let r): return later(createAcls(r, call))
        case .describeAcls(let r): return now(describeAcls(r, call))
        case .deleteAcls(let r): return later(deleteAcls(r, call))
        case .describeCluster(let r): return now(describeCluster(r, call))
        case .electLeaders(let r): return later(electLeaders(r, call))
        case .alterPartitionReassignments(let r): return later(alterPartitionReassignments(r, call))
        case .listPartitionReassignments(let r): return now(listPartitionReassignments(r, call))
        }
    }

    /// Every API with the versions Spool answers (old minimums included: librdkafka turns
    /// features on only when they are advertised, KAFKA.md pitfall 1).
    func apiVersionsResponse(errorCode: KafkaErrorCode) -> ApiVersionsResponse {
        ApiVersionsResponse(
            errorCode: errorCode.rawValue,
            apiKeys: KafkaApiKey.allCases.map {
                .init(apiKey: $0.rawValue, minVersion: $0.supportedVersions.lowerBound, maxVersion: $0.supportedVersions.upperBound)
            })
    }
}

import NIOCore
import SpoolBroker
import SpoolRecords

// Produce: each partition's batches go through the core's one append path (WRITE on the
// topic; transactional records also WRITE on the transactional id).
extension KafkaAPIs {
    func produce(_ request: ProduceRequest, _ call: KafkaCall) -> EventLoopFuture<KafkaReply> {
        let acks: Acks?
        switch request.acks {
        case 0: acks = Acks.none
        case 1: acks = .leader
        case -1: acks = .all
        default: acks = nil
        }
        let refusal: (KafkaErrorCode, String)?
        if call.version < 3 {
            // v0-2 carry message formats 0 and 1; Spool stores record batches (magic 2) only.
            refusal = (.unsupportedForMessageFormat, "Produce v\(call.version) carries an old message format; Spool needs v3+ (record batches)")
        } else if acks == nil {
            refusal = (.invalidRequiredAcks, "acks must be 0, 1 or -1 (all), not \(request.acks)")
        } else if let transactionalId = request.transactionalId, !transactionalId.isEmpty,
                  !may(call, .write, transactionalId: transactionalId) {
            // Transactional records need WRITE on the transactional id (the whole request fails).
            refusal = (.transactionalIdAuthorizationFailed, "not authorized to write for transactional id \(transactionalId)")
        } else {
            refusal = nil
        }
        if let (code, message) = refusal {
            let response = ProduceResponse(responses: request.topicData.map { topic in
                .init(name: topic.name, partitionResponses: topic.partitionData.map {
                    .init(index: $0.index, errorCode: code.rawValue, baseOffset: -1, errorMessage: message)
                })
            })
            return call.eventLoop.makeSucceededFuture(request.acks == 0 ? .noResponse : call.respond(response))
        }
        let topicFutures = request.topicData.map { topic -> EventLoopFuture<ProduceResponse.Topic> in
            // WRITE on the topic, else TOPIC_AUTHORIZATION_FAILED for each of its partitions.
            guard may(call, .write, topic: topic.name) else {
                return call.eventLoop.makeSucceededFuture(.init(name: topic.name, partitionResponses: topic.partitionData.map {
                    .init(index: $0.index, errorCode: Self.topicDenied, baseOffset: -1, errorMessage: "not authorized to write to topic \(topic.name)")
                }))
            }
            let partitions = topic.partitionData.map { p -> (partition: Int32, batches: ByteBuffer) in
                guard case .buffer(let bytes)? = p.records else { return (p.index, ByteBuffer()) }
                return (p.index, bytes)
            }
            return broker.produce(topic: topic.name, partitions, acks: acks!,
                                  timeoutMillis: request.timeoutMs > 0 ? Int64(request.timeoutMs) : nil, on: call.eventLoop).map { results in
                .init(name: topic.name, partitionResponses: results.map { r in
                    .init(
                        index: r.topicPartition.partition,
                        errorCode: r.error.map { KafkaErrorCode($0).rawValue } ?? 0,
                        baseOffset: r.error == nil ? r.baseOffset : -1,
                        logAppendTimeMs: r.logAppendTimeMillis,
                        logStartOffset: r.logStartOffset,
                        errorMessage: kafkaErrorMessage(r.error))
                })
            }
        }
        let bytes = request.topicData.reduce(0) { sum, topic in
            topic.partitionData.reduce(sum) { sum, p in
                guard case .buffer(let records)? = p.records else { return sum }
                return sum + records.readableBytes
            }
        }
        let quotas = broker.quotas
        return EventLoopFuture.whenAllSucceed(topicFutures, on: call.eventLoop).flatMap { topics in
            // Over its produce quota, the client's answer is held (acks=0: the next answers are).
            let throttle = quotas.record(.produce, user: call.quotaUser, clientId: call.header.clientId ?? "", bytes: bytes,
                                                nowMillis: Broker.wallClockMillis())
            // acks=0: the client expects no answer at all.
            let reply: KafkaReply = request.acks == 0
                ? .noResponse : call.respond(ProduceResponse(responses: topics, throttleTimeMs: Int32(clamping: throttle)))
            return call.held(reply, millis: throttle)
        }
    }
}

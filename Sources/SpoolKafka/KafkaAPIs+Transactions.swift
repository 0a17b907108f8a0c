import NIOCore
import SpoolBroker
import SpoolRecords

// Transactions: InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit and EndTxn, over the core's transaction coordinator.
// Each needs WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and
// AddPartitionsToTxn WRITE on each topic, AddOffsetsToTxn and TxnOffsetCommit READ on the
// group (and TxnOffsetCommit READ on each topic).
extension KafkaAPIs {
    func transactionalInitProducerId(_ request: InitProducerIdRequest, transactionalId: String,
                                     _ call: KafkaCall) -> EventLoopFuture<InitProducerIdResponse> {
        let coordinator = broker.transactions
        return call.eventLoop.makeFutureWithTask {
            do {
                let granted = try await coordinator.initProducerId(
                    transactionalId: transactionalId, timeoutMillis: request.transactionTimeoutMs,
                    producerId: request.producerId, producerEpoch: request.producerEpoch)
                return InitProducerIdResponse(errorCode: 0, producerId: granted.producerId, producerEpoch: granted.producerEpoch)
            } catch {
                if let refusal = error as? TransactionError, refusal.code == .unsupportedInCluster {
                    self.broker.events.transactionRefused(transactionalId: transactionalId, client: call.clientHost, api: call.api.name,
                                                          reason: refusal.message)
                }
                return InitProducerIdResponse(errorCode: Self.transactionCode(error, version: call.version).rawValue,
                                              producerId: -1, producerEpoch: -1)
            }
        }
    }

    func addPartitionsToTxn(_ request: AddPartitionsToTxnRequest, _ call: KafkaCall) -> AddPartitionsToTxnResponse {
        var code = KafkaErrorCode.none
        let txnAllowed = may(call, .write, transactionalId: request.transactionalId)
        let deniedTopics = txnAllowed ? Set(request.topics.map(\.name).filter { !may(call, .write, topic: $0) }) : []
        if !txnAllowed || !deniedTopics.isEmpty {
            // Nothing added: the refused partitions say why, the others OPERATION_NOT_ATTEMPTED.
            return AddPartitionsToTxnResponse(results: request.topics.map { topic in
                .init(name: topic.name, results: topic.partitions.map { p in
                    let c = !txnAllowed ? Self.transactionalIdDenied
                        : deniedTopics.contains(topic.name) ? Self.topicDenied : KafkaErrorCode.operationNotAttempted.rawValue
                    return .init(partitionIndex: p, errorCode: c)
                })
            })
        }
        var unknown: Set<TopicPartition> = []
        for topic in request.topics {
            for p in topic.partitions where (try? broker.listOffset(TopicPartition(topic.name, p), .earliest)) == nil {
                unknown.insert(TopicPartition(topic.name, p))
            }
        }
        if unknown.isEmpty {
            let tps = request.topics.flatMap { t in t.partitions.map { TopicPartition(t.name, $0) } }
            do {
                try broker.transactions.addPartitions(
                    transactionalId: request.transactionalId, producerId: request.producerId, producerEpoch: request.producerEpoch, tps)
            } catch {
                code = Self.transactionCode(error, version: call.version)
            }
        }
        return AddPartitionsToTxnResponse(results: request.topics.map { topic in
            .init(name: topic.name, results: topic.partitions.map { p in
                let c: KafkaErrorCode = unknown.isEmpty ? code
                    : unknown.contains(TopicPartition(topic.name, p)) ? .unknownTopicOrPartition : .operationNotAttempted
                return .init(partitionIndex: p, errorCode: c.rawValue)
            })
        })
    }

    func addOffsetsToTxn(_ request: AddOffsetsToTxnRequest, _ call: KafkaCall) -> AddOffsetsToTxnResponse {
        guard may(call, .write, transactionalId: request.transactionalId) else { return AddOffsetsToTxnResponse(errorCode: Self.transactionalIdDenied) }
        guard may(call, .read, group: request.groupId) else { return AddOffsetsToTxnResponse(errorCode: Self.groupDenied) }
        do {
            try broker.transactions.addOffsets(
                transactionalId: request.transactionalId, producerId: request.producerId, producerEpoch: request.producerEpoch,
                group: request.groupId)
            return AddOffsetsToTxnResponse(errorCode: 0)
        } catch {
            return AddOffsetsToTxnResponse(errorCode: Self.transactionCode(error, version: call.version).rawValue)
        }
    }

    func txnOffsetCommit(_ request: TxnOffsetCommitRequest, _ call: KafkaCall) -> TxnOffsetCommitResponse {
        var code = KafkaErrorCode.none
        let refusal: Int16? = !may(call, .write, transactionalId: request.transactionalId) ? Self.transactionalIdDenied
            : !may(call, .read, group: request.groupId) ? Self.groupDenied : nil
        if let refusal {
            return TxnOffsetCommitResponse(topics: request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: refusal) })
            })
        }
        let deniedTopics = Set(request.topics.map(\.name).filter { !may(call, .read, topic: $0) })
        do {
            let offsets = request.topics.filter { !deniedTopics.contains($0.name) }.flatMap { t in
                t.partitions.map { (TopicPartition(t.name, $0.partitionIndex), $0.committedOffset, $0.committedMetadata ?? "") }
            }
            try broker.transactions.commitOffsets(
                transactionalId: request.transactionalId, producerId: request.producerId, producerEpoch: request.producerEpoch,
                group: request.groupId, offsets)
        } catch {
            code = Self.transactionCode(error, version: call.version)
        }
        return TxnOffsetCommitResponse(topics: request.topics.map { t in
            .init(name: t.name, partitions: t.partitions.map {
                .init(partitionIndex: $0.partitionIndex, errorCode: deniedTopics.contains(t.name) ? Self.topicDenied : code.rawValue)
            })
        })
    }

    func endTxn(_ request: EndTxnRequest, _ call: KafkaCall) -> EventLoopFuture<EndTxnResponse> {
        guard may(call, .write, transactionalId: request.transactionalId) else {
            return call.eventLoop.makeSucceededFuture(EndTxnResponse(errorCode: Self.transactionalIdDenied))
        }
        let coordinator = broker.transactions
        return call.eventLoop.makeFutureWithTask {
            do {
                try await coordinator.endTransaction(
                    transactionalId: request.transactionalId, producerId: request.producerId, producerEpoch: request.producerEpoch,
                    commit: request.committed)
                return EndTxnResponse(errorCode: 0)
            } catch {
                return EndTxnResponse(errorCode: Self.transactionCode(error, version: call.version).rawValue)
            }
        }
    }

    /// Kafka's code for a coordinator refusal. PRODUCER_FENCED (90) is newer than some
    /// request versions: older ones get INVALID_PRODUCER_EPOCH, as Kafka answers them.
    static func transactionCode(_ error: Error, version: Int16) -> KafkaErrorCode {
        guard let e = error as? TransactionError else { return KafkaErrorCode(error) }
        switch e.code {
        case .invalidTransactionTimeout: return .invalidTransactionTimeout
        case .producerFenced: return .producerFenced
        case .invalidProducerEpoch: return .invalidProducerEpoch
        case .invalidProducerIdMapping: return .invalidProducerIdMapping
        case .invalidTxnState: return .invalidTxnState
        case .concurrentTransactions: return .concurrentTransactions
        case .storageFailed: return .kafkaStorageError
        case .unsupportedInCluster: return .coordinatorNotAvailable
        }
    }
}

import SpoolBroker
import SpoolProtocol
import SpoolRecords

/// The native protocol's transaction calls — InitProducerId with a transactional id,
/// AddPartitionsToTxn, SendOffsetsToTxn (AddOffsetsToTxn + TxnOffsetCommit) and EndTxn —
/// over the broker core's one `TransactionCoordinator`, the Kafka listener's. Refusals of
/// the coordinator come back as a `TxnError` in the response (Kafka's code of the same
/// name); anything else (a malformed request, a broker failure) as a STATUS.
enum NativeTransactionCalls {
    static func initProducerId(_ r: Spool_V1_InitProducerIdRequest, broker: Broker) async -> Spool_V1_InitProducerIdResponse {
        var response = Spool_V1_InitProducerIdResponse()
        do {
            let granted = try await broker.transactions.initProducerId(
                transactionalId: r.transactionalID, timeoutMillis: r.transactionTimeoutMs,
                producerId: r.hasProducerID ? r.producerID : -1,
                producerEpoch: r.hasProducerEpoch ? Int16(clamping: r.producerEpoch) : -1)
            response.producerID = granted.producerId
            response.producerEpoch = Int32(granted.producerEpoch)
        } catch {
            response.producerID = -1
            response.producerEpoch = -1
            (response.error, response.message) = refusal(error)
        }
        return response
    }

    static func addPartitions(_ r: Spool_V1_AddPartitionsToTxnRequest, broker: Broker) -> Spool_V1_AddPartitionsToTxnResponse {
        var response = Spool_V1_AddPartitionsToTxnResponse()
        let tps = r.partitions.map { TopicPartition($0.topic, $0.partition) }
        // As the Kafka listener: nothing is added when a partition does not exist.
        if let unknown = tps.first(where: { (try? broker.listOffset($0, .earliest)) == nil }) {
            response.error = .unknownTopicOrPartition
            response.message = "\(unknown) does not exist"
            return response
        }
        do {
            try broker.transactions.addPartitions(
                transactionalId: r.transactionalID, producerId: r.producerID, producerEpoch: Int16(clamping: r.producerEpoch), tps)
        } catch {
            (response.error, response.message) = refusal(error)
        }
        return response
    }

    static func sendOffsets(_ r: Spool_V1_SendOffsetsToTxnRequest, broker: Broker) -> Spool_V1_SendOffsetsToTxnResponse {
        var response = Spool_V1_SendOffsetsToTxnResponse()
        let epoch = Int16(clamping: r.producerEpoch)
        do {
            try broker.transactions.addOffsets(transactionalId: r.transactionalID, producerId: r.producerID, producerEpoch: epoch, group: r.group)
            try broker.transactions.commitOffsets(
                transactionalId: r.transactionalID, producerId: r.producerID, producerEpoch: epoch, group: r.group,
                r.offsets.map { (TopicPartition($0.topic, $0.partition), $0.offset, $0.metadata) })
        } catch {
            (response.error, response.message) = refusal(error)
        }
        return response
    }

    static func endTxn(_ r: Spool_V1_EndTxnRequest, broker: Broker) async -> Spool_V1_EndTxnResponse {
        var response = Spool_V1_EndTxnResponse()
        do {
            try await broker.transactions.endTransaction(
                transactionalId: r.transactionalID, producerId: r.producerID, producerEpoch: Int16(clamping: r.producerEpoch),
                commit: r.commit)
        } catch {
            (response.error, response.message) = refusal(error)
        }
        return response
    }

    /// The `TxnError` of a coordinator refusal; other failures as STORAGE_FAILED with their text.
    static func refusal(_ error: Error) -> (Spool_V1_TxnError, String) {
        guard let e = error as? TransactionError else { return (.storageFailed, "\(error)") }
        return (txnError(e.code), e.message)
    }

    static func txnError(_ code: TransactionError.Code) -> Spool_V1_TxnError {
        switch code {
        case .producerFenced: .producerFenced
        case .invalidProducerEpoch: .invalidProducerEpoch
        case .invalidTxnState: .invalidTxnState
        case .concurrentTransactions: .concurrentTransactions
        case .invalidTransactionTimeout: .invalidTransactionTimeout
        case .invalidProducerIdMapping: .invalidProducerIDMapping
        case .storageFailed: .storageFailed
        case .unsupportedInCluster: .unsupported
        }
    }
}

import SpoolProtocol

// Transactions (`ProducerConfig.transactionalId`), as Kafka's producer has them:
//
//     try await producer.initTransactions()     // optional: the first begin does it
//     try await producer.beginTransaction()
//     _ = try await producer.send(topic: "out", value: …)
//     try await producer.sendOffsetsToTransaction([(…)], group: "g")
//     try await producer.commitTransaction()    // or abortTransaction()
//
// The broker's transaction coordinator (the Kafka listener's) keeps the transaction;
// the producer adds each partition before its first batch of the transaction, marks its
// batches transactional, and flushes everything before EndTxn.
extension SpoolProducer {
    /// Most pause between retries of a transaction call the coordinator answered
    /// CONCURRENT_TRANSACTIONS (the previous transaction's markers are being written).
    static let transactionRetryBackoffMaxMillis = 500

    /// Registers the transactional id with the broker (Kafka's `initTransactions`): gets
    /// its producer id with a bumped epoch, fencing every older producer of the id and
    /// aborting a transaction one left open. Once per producer; `beginTransaction` calls it.
    public func initTransactions() async throws {
        guard let transactionalId = config.transactionalId else {
            throw ProducerError(.transactionState, "the producer has no transactionalId")
        }
        if state.withLockedValue({ $0.identity != nil }) { return }
        var request = Spool_V1_InitProducerIdRequest()
        request.transactionalID = transactionalId
        request.transactionTimeoutMs = config.transactionTimeoutMillis
        let response: Spool_V1_InitProducerIdResponse = try await retryingCoordinator {
            let r: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, request)
            return (r, r.error, r.message)
        }
        let identity = ProducerIdentity(producerId: response.producerID, epoch: Int16(clamping: response.producerEpoch))
        state.withLockedValue { s in
            if s.identity == nil { s.identity = identity }
        }
    }

    /// Opens a transaction: records sent from now until `commitTransaction` or
    /// `abortTransaction` are committed or aborted together.
    public func beginTransaction() async throws {
        try await initTransactions()
        try state.withLockedValue { s in
            if let fenced = s.transaction.fenced { throw fenced }
            guard !s.transaction.open else { throw ProducerError(.transactionState, "a transaction is open already") }
            s.transaction = ProducerTransaction(open: true)
        }
    }

    /// Adds a consumer group's offsets to the open transaction (Kafka's
    /// `sendOffsetsToTransaction`): they are stored for `group` when the transaction
    /// commits, and never if it aborts. Give each partition's next offset to consume.
    public func sendOffsetsToTransaction(_ offsets: [(topic: String, partition: Int32, offset: Int64)], group: String) async throws {
        let identity = try transactionIdentity()
        var request = Spool_V1_SendOffsetsToTxnRequest()
        request.transactionalID = config.transactionalId!
        request.producerID = identity.producerId
        request.producerEpoch = Int32(identity.epoch)
        request.group = group
        request.offsets = Spool_V1_GroupOffset.list(offsets)
        let _: Spool_V1_SendOffsetsToTxnResponse = try await retryingCoordinator {
            let r: Spool_V1_SendOffsetsToTxnResponse = try await connection.call(.sendOffsetsToTxn, request)
            return (r, r.error, r.message)
        }
        state.withLockedValue { $0.transaction.begunOnBroker = true }
    }

    /// Sends every record of the transaction, waits for them, then commits it (EndTxn):
    /// returns once the COMMIT markers are written. If a record failed, nothing is
    /// committed and `ProducerError.Code.transactionFailed` is thrown: abort then.
    /// An empty transaction commits.
    public func commitTransaction() async throws {
        _ = try transactionIdentity()
        try await flush()
        if let failure = state.withLockedValue({ $0.transaction.failure }) {
            if let fenced = state.withLockedValue({ $0.transaction.fenced }) { throw fenced }
            throw ProducerError(.transactionFailed, "a record of the transaction failed; abort it", underlying: failure)
        }
        try await endTransaction(commit: true)
    }

    /// Waits for the records sent in the transaction, then aborts it (EndTxn): its
    /// records stay in the log, skipped by read_committed consumers. After a failed
    /// record the producer's epoch is bumped, so that its sequences start again.
    public func abortTransaction() async throws {
        _ = try transactionIdentity()
        try await flush()
        if let fenced = state.withLockedValue({ $0.transaction.fenced }) { throw fenced }
        try await endTransaction(commit: false)
        guard state.withLockedValue({ $0.transaction.sequenceGap }), let identity = state.withLockedValue({ $0.identity }) else { return }
        var request = Spool_V1_InitProducerIdRequest()
        request.transactionalID = config.transactionalId!
        request.transactionTimeoutMs = config.transactionTimeoutMillis
        request.producerID = identity.producerId
        request.producerEpoch = Int32(identity.epoch)
        let response: Spool_V1_InitProducerIdResponse = try await retryingCoordinator {
            let r: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, request)
            return (r, r.error, r.message)
        }
        let next = ProducerIdentity(producerId: response.producerID, epoch: Int16(clamping: response.producerEpoch))
        state.withLockedValue { s in
            s.bumped(to: next)
            s.transaction.sequenceGap = false
        }
    }

    // MARK: Internals

    /// Adds one partition to the open transaction (AddPartitionsToTxn) before its first batch.
    func addToTransaction(_ ref: PartitionRef, topic: String) async throws {
        let identity = try transactionIdentity()
        var request = Spool_V1_AddPartitionsToTxnRequest()
        request.transactionalID = config.transactionalId!
        request.producerID = identity.producerId
        request.producerEpoch = Int32(identity.epoch)
        var p = Spool_V1_TxnPartition()
        p.topic = topic
        p.partition = ref.partition
        request.partitions = [p]
        let _: Spool_V1_AddPartitionsToTxnResponse = try await retryingCoordinator {
            let r: Spool_V1_AddPartitionsToTxnResponse = try await connection.call(.addPartitionsToTxn, request)
            return (r, r.error, r.message)
        }
        state.withLockedValue { s in
            if s.transaction.open {
                s.transaction.partitions.insert(ref)
                s.transaction.begunOnBroker = true
            }
        }
    }

    /// The identity of the open transaction; throws when fenced or none is open.
    private func transactionIdentity() throws -> ProducerIdentity {
        guard config.transactionalId != nil else { throw ProducerError(.transactionState, "the producer has no transactionalId") }
        return try state.withLockedValue { s in
            try s.transaction.checkSendable()
            guard let identity = s.identity else { throw ProducerError(.transactionState, "initTransactions() has not completed") }
            return identity
        }
    }

    private func endTransaction(commit: Bool) async throws {
        let identity = try transactionIdentity()
        var request = Spool_V1_EndTxnRequest()
        request.transactionalID = config.transactionalId!
        request.producerID = identity.producerId
        request.producerEpoch = Int32(identity.epoch)
        request.commit = commit
        if state.withLockedValue({ $0.transaction.begunOnBroker }) {
            let _: Spool_V1_EndTxnResponse = try await retryingCoordinator {
                let r: Spool_V1_EndTxnResponse = try await connection.call(.endTxn, request)
                return (r, r.error, r.message)
            }
        }
        state.withLockedValue { s in
            s.transaction.open = false
            s.transaction.partitions = []
            s.transaction.failure = nil
            s.transaction.begunOnBroker = false
        }
    }

    /// Runs a coordinator call, retrying CONCURRENT_TRANSACTIONS and STORAGE_FAILED with
    /// backoff until the delivery timeout; other refusals become `ProducerError`s (a
    /// fenced producer stays fenced).
    private func retryingCoordinator<R>(_ call: () async throws -> (R, Spool_V1_TxnError, String)) async throws -> R {
        let deadline = ContinuousClock.now + .milliseconds(config.deliveryTimeoutMillis)
        var attempts = 0
        while true {
            let (response, error, message) = try await call()
            switch error {
            case .none:
                return response
            case .concurrentTransactions, .storageFailed:
                attempts += 1
                guard ContinuousClock.now < deadline else {
                    throw ProducerError(.transactionRefused, "\(Self.name(error)): \(message), still after \(attempts) attempts")
                }
                let pause = min(config.retryBackoffMillis << min(attempts - 1, 8), Self.transactionRetryBackoffMaxMillis)
                try await Task.sleep(nanoseconds: UInt64(max(pause, 1)) * 1_000_000)
            default:
                let refusal = Self.producerError(error, message)
                if refusal.code == .fenced {
                    state.withLockedValue { s in
                        if s.transaction.fenced == nil { s.transaction.fenced = refusal }
                    }
                }
                throw refusal
            }
        }
    }

    /// The `ProducerError` of a coordinator refusal.
    static func producerError(_ error: Spool_V1_TxnError, _ message: String) -> ProducerError {
        let text = "\(name(error)): \(message)"
        switch error {
        case .producerFenced, .invalidProducerEpoch: return ProducerError(.fenced, text)
        case .invalidTxnState: return ProducerError(.transactionState, text)
        default: return ProducerError(.transactionRefused, text)
        }
    }

    /// Kafka's name of a coordinator refusal.
    static func name(_ error: Spool_V1_TxnError) -> String {
        switch error {
        case .none: "NONE"
        case .producerFenced: "PRODUCER_FENCED"
        case .invalidProducerEpoch: "INVALID_PRODUCER_EPOCH"
        case .invalidTxnState: "INVALID_TXN_STATE"
        case .concurrentTransactions: "CONCURRENT_TRANSACTIONS"
        case .invalidTransactionTimeout: "INVALID_TRANSACTION_TIMEOUT"
        case .invalidProducerIDMapping: "INVALID_PRODUCER_ID_MAPPING"
        case .storageFailed: "COORDINATOR_STORAGE_FAILED"
        case .unknownTopicOrPartition: "UNKNOWN_TOPIC_OR_PARTITION"
        case .unsupported: "UNSUPPORTED"
        case .UNRECOGNIZED(let n): "TXN_ERROR_\(n)"
        }
    }

    /// A Produce partition result the transaction coordinator refused.
    static func transactionOutcome(_ result: Spool_V1_ProducePartitionResult) -> ProducerState.EntryOutcome {
        switch result.txnError {
        case .concurrentTransactions, .storageFailed:
            return .retriable(SpoolStatusError(result.code, result.message))
        default:
            return .failed(producerError(result.txnError, result.message))
        }
    }
}

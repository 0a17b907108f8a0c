import Logging
import NIOCore
import SpoolRecords
import SpoolStorage
import Synchronization

/// Kafka's transaction coordinator, for a single broker: one state per transactional id
/// (``TransactionMetadata``), durable in ``TransactionStore`` before every answer.
///
/// EndTxn moves Ongoing → PrepareCommit/PrepareAbort (stored), writes a COMMIT/ABORT
/// marker to every partition of the transaction (on each partition's serial queue),
/// stores the transaction's offsets at COMMIT, then → CompleteCommit/CompleteAbort
/// (stored). A prepared transaction found at start is completed before the broker
/// serves (``recover()``). While markers are written, requests of the id get
/// `concurrentTransactions` (retriable). InitProducerId bumps the epoch, fencing older
/// producers of the id (`producerFenced`), and aborts a transaction left open.
/// Transactions open longer than their timeout are aborted (``abortTimedOut()``) and
/// their producer fenced by an epoch bump.
public final class TransactionCoordinator: Sendable {
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for (15 min).
    public static let maxTimeoutMillis: Int32 = 900_000
    /// How often open transactions are checked against their timeout (Kafka: 10 s).
    public static let timeoutCheckIntervalMillis: Int64 = 1_000

    let store: TransactionStore
    let storage: LogManager
    let io: PartitionExecutor
    let notifier: AppendNotifier
    let producers: ProducerStateManager
    /// The partitions' open and aborted transactions (LSO, read_committed).
    public let partitions: PartitionTransactions
    let clock: @Sendable () -> Int64
    private let state: Mutex<[String: TransactionMetadata]>
    private let timer = Mutex<Task<Void, Never>?>(nil)
    /// What a cluster's brokers answer every transactional request with.
    public static let clusterRefusal =
        "transactions are not supported by a Spool cluster yet: the transaction coordinator's state is not replicated"
    /// Set in cluster mode (``refuseAll(because:)``): why every request is refused.
    private let refusal = Mutex<String?>(nil)

    init(dataDirectory: String, storage: LogManager, io: PartitionExecutor, notifier: AppendNotifier,
         producers: ProducerStateManager, partitions: PartitionTransactions,
         clock: @escaping @Sendable () -> Int64 = PartitionLog.wallClockMillis) throws {
        store = TransactionStore(dataDirectory: dataDirectory, io: storage.io)
        self.storage = storage
        self.io = io
        self.notifier = notifier
        self.producers = producers
        self.partitions = partitions
        self.clock = clock
        state = Mutex(try store.load())
    }

    // MARK: Requests

    /// Refuses every request from now on with `unsupportedInCluster` and `reason`. A
    /// cluster's broker calls it when it joins: this coordinator keeps its state on one
    /// broker and writes markers to its own logs only, so a transaction over partitions led
    /// elsewhere could be neither completed there nor recovered after this broker's loss
    /// (its open transactions would hold the last stable offset of those partitions forever).
    public func refuseAll(because reason: String) {
        refusal.withLock { $0 = reason }
    }

    /// Why requests are refused (cluster mode), or nil.
    public var refusalReason: String? { refusal.withLock { $0 } }

    private func checkServing() throws {
        if let reason = refusalReason { throw TransactionError(.unsupportedInCluster, reason) }
    }

    /// InitProducerId with a transactional id: the id's producer id (a fresh one the first
    /// time) with its epoch bumped; a transaction left open is aborted first.
    public func initProducerId(transactionalId: String, timeoutMillis: Int32,
                               producerId: Int64 = -1, producerEpoch: Int16 = -1) async throws -> ProducerStateManager.ProducerIdAndEpoch {
        try checkServing()
        guard timeoutMillis > 0, timeoutMillis <= Self.maxTimeoutMillis else {
            throw TransactionError(.invalidTransactionTimeout,
                "transaction.timeout.ms \(timeoutMillis) is outside 1...\(Self.maxTimeoutMillis) (transaction.max.timeout.ms)")
        }
        let existing = state.withLock { $0[transactionalId] }
        if let m = existing {
            if m.state.isPreparing {
                throw TransactionError(.concurrentTransactions, "transaction of \(transactionalId) is being completed")
            }
            if producerId >= 0, producerId != m.producerId || producerEpoch != m.producerEpoch {
                throw TransactionError(.producerFenced, "producer \(producerId) epoch \(producerEpoch) is not the current one of \(transactionalId)")
            }
            if m.state == .ongoing {
                // Abort with a bumped epoch (fences the old producer), then bump again for the new one.
                try await complete(transactionalId, commit: false, bump: true)
            }
        }
        let fresh = try await io.run { [producers] in try producers.initProducerId() }
        return try update(transactionalId) { m in
            let now = clock()
            if var m = m {
                if m.producerEpoch >= Int16.max - 1 {
                    m.producerId = fresh.producerId
                    m.producerEpoch = 0
                } else {
                    m.producerEpoch += 1
                }
                m.timeoutMillis = timeoutMillis
                m.state = .empty
                m.partitions = []
                m.groups = []
                m.pendingOffsets = []
                m.updatedAtMillis = now
                return m
            }
            return TransactionMetadata(transactionalId: transactionalId, producerId: fresh.producerId, producerEpoch: 0,
                                       timeoutMillis: timeoutMillis, state: .empty, updatedAtMillis: now)
        }.map { ProducerStateManager.ProducerIdAndEpoch(producerId: $0.producerId, producerEpoch: $0.producerEpoch) }!
    }

    /// AddPartitionsToTxn: the partitions join the ongoing transaction (one starts if none is open).
    public func addPartitions(transactionalId: String, producerId: Int64, producerEpoch: Int16, _ tps: [TopicPartition]) throws {
        try checkServing()
        try begin(transactionalId, producerId, producerEpoch) { m in
            for tp in tps { m.partitions.insert(.init(topic: tp.topic, partition: tp.partition)) }
        }
    }

    /// AddOffsetsToTxn: the group's offsets join the ongoing transaction.
    public func addOffsets(transactionalId: String, producerId: Int64, producerEpoch: Int16, group: String) throws {
        try checkServing()
        try begin(transactionalId, producerId, producerEpoch) { m in m.groups.insert(group) }
    }

    /// TxnOffsetCommit: offsets held with the transaction, stored for the group at COMMIT only.
    public func commitOffsets(transactionalId: String, producerId: Int64, producerEpoch: Int16, group: String,
                              _ offsets: [(TopicPartition, Int64, String)]) throws {
        try checkServing()
        _ = try update(transactionalId) { m in
            guard var m = m else { throw TransactionError(.invalidProducerIdMapping, "unknown transactional id \(transactionalId)") }
            try Self.check(m, producerId, producerEpoch)
            guard m.state == .ongoing, m.groups.contains(group) else {
                throw TransactionError(.invalidTxnState, "group \(group) is not part of an ongoing transaction of \(transactionalId)")
            }
            for (tp, offset, metadata) in offsets {
                m.pendingOffsets.removeAll { $0.group == group && $0.topic == tp.topic && $0.partition == tp.partition }
                m.pendingOffsets.append(.init(group: group, topic: tp.topic, partition: tp.partition, offset: offset, metadata: metadata))
            }
            return m
        }
    }

    /// EndTxn: commits or aborts the ongoing transaction; returns once its markers are in
    /// every partition. An empty transaction (nothing added) completes at once.
    public func endTransaction(transactionalId: String, producerId: Int64, producerEpoch: Int16, commit: Bool) async throws {
        try checkServing()
        let m = try state.withLock { s -> TransactionMetadata in
            guard let m = s[transactionalId] else {
                throw TransactionError(.invalidProducerIdMapping, "unknown transactional id \(transactionalId)")
            }
            try Self.check(m, producerId, producerEpoch)
            return m
        }
        switch m.state {
        case .ongoing:
            try await complete(transactionalId, commit: commit, bump: false)
        case .prepareCommit, .prepareAbort:
            throw TransactionError(.concurrentTransactions, "transaction of \(transactionalId) is being completed")
        case .completeCommit where commit, .completeAbort where !commit, .empty:
            return  // a retry of the last EndTxn, or an empty transaction
        case .completeCommit, .completeAbort:
            throw TransactionError(.invalidTxnState, "transaction of \(transactionalId) already ended \(m.state.rawValue)")
        }
    }

    /// Checks a transactional produce: the producer is the id's current one and the partition is in its transaction.
    func checkProduce(producerId: Int64, producerEpoch: Int16, _ tp: TopicPartition) throws {
        try checkServing()
        let ok = state.withLock { s -> (Bool, Bool)? in
            guard let m = s.values.first(where: { $0.producerId == producerId }) else { return nil }
            return (producerEpoch >= m.producerEpoch,
                    m.state == .ongoing && m.producerEpoch == producerEpoch && m.partitions.contains(.init(topic: tp.topic, partition: tp.partition)))
        }
        guard let (epochOk, added) = ok else {
            throw TransactionError(.invalidProducerIdMapping, "producer \(producerId) has no transactional id")
        }
        // As Kafka's partition leader answers an older epoch: INVALID_PRODUCER_EPOCH (fatal for the client).
        guard epochOk else { throw TransactionError(.invalidProducerEpoch, "producer \(producerId) epoch \(producerEpoch) is fenced by a newer epoch") }
        guard added else {
            throw TransactionError(.invalidTxnState, "\(tp) is not part of producer \(producerId)'s ongoing transaction")
        }
    }

    /// A transactional id's state (for tests and tools).
    public func describe(_ transactionalId: String) -> TransactionMetadata? {
        state.withLock { $0[transactionalId] }
    }

    // MARK: Completion

    /// Completes transactions left prepared by a stop: their markers are written again
    /// (a partition that has one already skips a second), offsets stored, state completed.
    func recover() async throws {
        let prepared = state.withLock { $0.values.filter { $0.state.isPreparing } }
        for m in prepared {
            try await writeMarkersAndComplete(m)
        }
    }

    /// Aborts every transaction open longer than its timeout, fencing its producer.
    public func abortTimedOut() async {
        let now = clock()
        let expired = state.withLock { s in
            s.values.filter { $0.state == .ongoing && $0.startedAtMillis + Int64($0.timeoutMillis) <= now }.map(\.transactionalId)
        }
        for id in expired {
            try? await complete(id, commit: false, bump: true)
        }
    }

    /// Starts the timeout checks.
    func start() {
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(Self.timeoutCheckIntervalMillis) * 1_000_000)
                guard let self else { return }
                await self.abortTimedOut()
            }
        }
        timer.withLock { $0 = task }
    }

    func shutdown() {
        timer.withLock { $0?.cancel(); $0 = nil }
    }

    private func complete(_ id: String, commit: Bool, bump: Bool) async throws {
        let prepared = try update(id) { m in
            guard var m = m, m.state == .ongoing else {
                throw TransactionError(.concurrentTransactions, "transaction of \(id) is not open")
            }
            m.state = commit ? .prepareCommit : .prepareAbort
            if bump && m.producerEpoch < Int16.max - 1 { m.producerEpoch += 1 }
            m.updatedAtMillis = clock()
            return m
        }!
        try await writeMarkersAndComplete(prepared)
    }

    private func writeMarkersAndComplete(_ m: TransactionMetadata) async throws {
        let commit = m.state == .prepareCommit
        for p in m.partitions {
            try await writeMarker(p.topicPartition, commit: commit, producerId: m.producerId, producerEpoch: m.producerEpoch)
        }
        if commit {
            var byGroup: [String: [TopicPartition: CommittedOffset]] = [:]
            let now = clock()
            for o in m.pendingOffsets {
                byGroup[o.group, default: [:]][TopicPartition(o.topic, o.partition)] =
                    CommittedOffset(offset: o.offset, metadata: o.metadata, commitTimestamp: now)
            }
            for (group, offsets) in byGroup {
                try await storage.offsets.commit(group: group, offsets: offsets)
            }
        }
        _ = try update(m.transactionalId) { current in
            guard var current else { return nil }
            current.state = commit ? .completeCommit : .completeAbort
            current.partitions = []
            current.groups = []
            current.pendingOffsets = []
            current.updatedAtMillis = clock()
            return current
        }
    }

    /// Appends one marker on the partition's serial queue and wakes its readers.
    func writeMarker(_ tp: TopicPartition, commit: Bool, producerId: Int64, producerEpoch: Int16) async throws {
        let storage = storage
        let index = partitions
        let notifier = notifier
        let now = clock()
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            io.submit(tp) {
                do {
                    let log: PartitionLog
                    do {
                        log = try storage.partition(tp)
                    } catch let e as StorageError where e.code == .unknownTopic || e.code == .unknownPartition {
                        c.resume()  // deleted meanwhile: nothing to mark
                        return
                    }
                    try index.prepare(log)
                    guard try index.openProducers(log)[producerId] != nil else {
                        c.resume()  // no data of this transaction here (or marked already)
                        return
                    }
                    var batch = try ControlBatch.marker(commit: commit, producerId: producerId, producerEpoch: producerEpoch, timestamp: now)
                    let validated = try log.validate(batch)
                    let result = try log.append(validated: validated, &batch)
                    var h = validated.batches[0].header
                    h.baseOffset = result.baseOffset
                    for aborted in index.recordAppended([h], commitTypes: [result.baseOffset: commit], log: log) {
                        try log.appendAbortedTransaction(aborted)
                    }
                    notifier.notify(tp)
                    c.resume()
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }

    // MARK: State

    private func begin(_ id: String, _ producerId: Int64, _ producerEpoch: Int16, _ change: (inout TransactionMetadata) throws -> Void) throws {
        _ = try update(id) { m in
            guard var m = m else { throw TransactionError(.invalidProducerIdMapping, "unknown transactional id \(id)") }
            try Self.check(m, producerId, producerEpoch)
            if m.state.isPreparing {
                throw TransactionError(.concurrentTransactions, "transaction of \(id) is being completed")
            }
            if m.state.isIdle {
                m.state = .ongoing
                m.startedAtMillis = clock()
            }
            try change(&m)
            m.updatedAtMillis = clock()
            return m
        }
    }

    static func check(_ m: TransactionMetadata, _ producerId: Int64, _ producerEpoch: Int16) throws {
        guard producerId == m.producerId else {
            throw TransactionError(.invalidProducerIdMapping, "producer \(producerId) is not the producer of \(m.transactionalId)")
        }
        if producerEpoch < m.producerEpoch {
            throw TransactionError(.producerFenced, "epoch \(producerEpoch) of \(m.transactionalId) is fenced by epoch \(m.producerEpoch)")
        }
        guard producerEpoch == m.producerEpoch else {
            throw TransactionError(.invalidProducerEpoch, "epoch \(producerEpoch) is not \(m.transactionalId)'s epoch \(m.producerEpoch)")
        }
    }

    /// Changes one id's state and stores the whole state durably before returning.
    @discardableResult
    private func update(_ id: String, _ change: (TransactionMetadata?) throws -> TransactionMetadata?) throws -> TransactionMetadata? {
        try state.withLock { s in
            let before = s[id]
            let after = try change(before)
            guard after != before else { return after }
            var next = s
            next[id] = after
            do {
                try store.save(next)
            } catch {
                throw TransactionError(.storageFailed, "transaction state not stored: \(error)")
            }
            s = next
            return after
        }
    }
}

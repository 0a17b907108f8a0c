import Logging
import NIOConcurrencyHelpers
import NIOCore
import SpoolRecords
import SpoolStorage

/// The broker core: what Spool does with topics, records and offsets, independent of any
/// wire protocol. The native listener and the Kafka listener decode their requests, call
/// it, and encode its answers, so a record produced through one is read through the other.
///
/// Blocking storage work (appends, fsync waits, admin, metadata rewrites) runs on the
/// `io` pool, never on the calling event loop: the data-plane calls return futures on the
/// caller's event loop, the admin calls are `async`.
///
/// ```swift
/// let broker = try Broker(config: BrokerConfig(dataDirectory: "data"))
/// let results = broker.produce(topic: "t", [(0, batches)], acks: .leader, on: eventLoop)
/// let fetch = broker.fetch(spec, on: eventLoop)        // PendingFetch: long poll, cancellable
/// ```
public final class Broker: Sendable {
    /// The broker's release version.
    public static let version = "0.2.0"

    public let config: BrokerConfig
    /// The logs, topic and offset stores. The core's alone: listeners read and write
    /// through the core's calls and types (tests reach it with `@testable import`).
    let storage: LogManager
    /// Metrics and the log.
    public let events: BrokerEvents
    /// When the broker was created (wall clock, milliseconds since the epoch).
    public let startedAtMillis = PartitionLog.wallClockMillis()
    /// The I/O pool: per-partition serial work and admin work.
    public let io: PartitionExecutor
    /// The budgets every listener draws from (connections, descriptors, buffered bytes).
    public let budgets: ResourceBudgets
    /// Consumer groups (Kafka's classic protocol) and their committed offsets, for every listener.
    public let groups: GroupCoordinator
    /// Idempotent producers: producer ids and per-partition sequence state.
    public let producers: ProducerStateManager
    /// Client quotas (produce and fetch byte rates per user and client id).
    public let quotas: ClientQuotaManager
    /// Transactions: the coordinator and each partition's open and aborted transactions.
    public let transactions: TransactionCoordinator
    /// ACLs and the checks made with them.
    public let authorizer: Authorizer
    /// Dynamic BROKER-resource settings (Kafka's AlterConfigs on a broker), kept in the data directory.
    let dynamicConfigs: BrokerConfigStore
    let notifier = AppendNotifier()
    /// The cluster's latest decision per partition (`applyReplicaState`); empty in single-node mode.
    let replicaStates = NIOLockedValueBox<[TopicPartition: ReplicaState]>([:])
    /// The cluster layer, when clustered: set once, before the listeners start.
    public var replicationDelegate: (any ReplicationDelegate)? {
        get { delegateBox.withLockedValue { $0 } }
        set { delegateBox.withLockedValue { $0 = newValue } }
    }
    let delegateBox = NIOLockedValueBox<(any ReplicationDelegate)?>(nil)
    /// Told of every role change `applyReplicaState` makes (the follower fetcher starts and
    /// stops on it); set once, before the cluster layer applies states.
    public var replicaRoleObserver: (@Sendable (TopicPartition, ReplicaRole) -> Void)? {
        get { roleObserverBox.withLockedValue { $0 } }
        set { roleObserverBox.withLockedValue { $0 = newValue } }
    }
    let roleObserverBox = NIOLockedValueBox<(@Sendable (TopicPartition, ReplicaRole) -> Void)?>(nil)
    /// The partitions this broker leads in cluster mode, with their followers and waiters.
    let leaderStates = NIOLockedValueBox<[TopicPartition: LeaderState]>([:])
    /// Whether the ISR-shrink timer runs.
    let replicationTimer = NIOLockedValueBox(false)
    /// Cluster mode: where topics are created, grown, altered and deleted (etcd); set once,
    /// before the listeners start. nil: topics live in local storage alone.
    public var clusterAdministration: (any ClusterAdministration)? {
        get { administrationBox.withLockedValue { $0 } }
        set { administrationBox.withLockedValue { $0 = newValue } }
    }
    let administrationBox = NIOLockedValueBox<(any ClusterAdministration)?>(nil)
    let groupOwnershipBox = NIOLockedValueBox<ReplicatedGroupOffsets?>(nil)
    /// Cluster mode (`BrokerConfig.securityInCluster`): where ACL and quota changes go; set
    /// once, before the listeners start.
    public var clusterSecurity: (any ClusterSecurityAdministration)? {
        get { securityBox.withLockedValue { $0 } }
        set { securityBox.withLockedValue { $0 = newValue } }
    }
    let securityBox = NIOLockedValueBox<(any ClusterSecurityAdministration)?>(nil)
    let accumulator: RecordAccumulator
    /// The log cleaner of compacted topics (started with the background work).
    public let cleaner: LogCleaner
    let cleanerMetrics: CleanerMetrics

    /// Opens the storage (recovering it if needed). `io` is the storage's file I/O (tests
    /// pass one that injects faults); `events` receives metrics and logs.
    public init(config: BrokerConfig, io: FileIO = PosixFileIO(), events: BrokerEvents = BrokerEvents()) throws {
        self.config = config
        self.events = events
        // The descriptor cache and the connections share the process limit (see DescriptorBudget).
        var storageConfig = config.storage
        storageConfig.maxOpenFiles = DescriptorBudget.cacheSize(
            config.storage.maxOpenFiles, limit: DescriptorBudget.processLimit(), reserve: config.budgets.descriptorReserve)
        storage = try LogManager(config: storageConfig, io: io, observer: events)
        events.storageOpened(cleanStop: storage.openedClean)
        cleaner = LogCleaner(storage: storage, config: config.storage.cleaner)
        cleanerMetrics = CleanerMetrics(factory: events.metrics.factory)
        budgets = ResourceBudgets(config: config.budgets, descriptorCacheSize: storageConfig.maxOpenFiles)
        let io = PartitionExecutor(threads: max(1, config.ioThreads))
        self.io = io
        let storage = storage
        let producers = try ProducerStateManager(dataDirectory: config.storage.dataDirectory, io: storage.io)
        self.producers = producers
        let transactions = try TransactionCoordinator(
            dataDirectory: config.storage.dataDirectory, storage: storage, io: io, notifier: notifier, producers: producers,
            partitions: PartitionTransactions())
        self.transactions = transactions
        // Cluster mode: transactions are refused from the first request on (see refuseAll).
        if config.nodeId != nil { transactions.refuseAll(because: TransactionCoordinator.clusterRefusal) }
        quotas = ClientQuotaManager(
            store: config.securityInCluster ? ClientQuotaStore(replicated: ())
                : try ClientQuotaStore(dataDirectory: config.storage.dataDirectory, io: storage.io), config: config.quotas,
            factory: events.metrics.factory)
        authorizer = Authorizer(config: config.authorization, acls: config.securityInCluster ? AclStore(replicated: ())
            : try AclStore(dataDirectory: config.storage.dataDirectory, io: storage.io))
        dynamicConfigs = try BrokerConfigStore(dataDirectory: config.storage.dataDirectory, io: storage.io)
        groups = GroupCoordinator(config: config.groups, offsets: storage.offsets, rebalanced: events.groupRebalanced,
                                  expiryRan: events.offsetExpiryRan) { tp in
            (try? storage.partition(tp)) != nil
        }
        accumulator = RecordAccumulator(maxBatchBytes: config.accumulatorBatchBytes)
        // Prepared transactions left by a stop are completed first; then timeouts are checked.
        Task { [transactions, events] in
            do { try await transactions.recover() } catch {
                events.logger.error("transactions: completing prepared transactions failed: \(error)")
            }
            transactions.start()
        }
        let maxDecompressed = config.maxDecompressedBatchBytes
        accumulator.sink = { [weak self, storage, notifier, producers, events] tp, builder, deliver in
            // Compression and the append run on the partition's serial queue, in close order.
            let broker = self
            io.submit(tp) {
                let result = Result { () throws -> AppendResult in
                    let lead: (epoch: Int32?, leader: LeaderState?) = try broker?.leaderEpochForAppend(tp) ?? (nil, nil)
                    var batch = try builder.build()
                    let result = try Self.append(tp, &batch, storage: storage, producers: producers, notifier: notifier,
                                                 maxDecompressedBytes: maxDecompressed, metrics: events.metrics, leaderEpoch: lead.epoch).result
                    lead.leader?.appended()
                    return result
                }
                deliver(result)
            }
        }
    }

    // MARK: Topics

    /// Describes a topic: effective configs, overrides, each partition's offsets and size.
    public func describeTopic(_ name: String) throws -> TopicDescription {
        try BrokerError.translate { try describeStoredTopic(name) }
    }

    private func describeStoredTopic(_ name: String) throws -> TopicDescription {
        guard let definition = storage.topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        let config = try storage.topicConfig(name)
        let partitions = try storage.partitions(of: name).map { log in
            PartitionDescription(
                partition: log.partition, logStartOffset: log.startOffset, logEndOffset: log.endOffset,
                highWatermark: log.highWatermark, sizeBytes: log.sizeBytes, segments: log.segmentCount,
                stopped: log.failure != nil, failure: log.failure?.message, replica: replicaState(TopicPartition(name, log.partition)))
        }
        return TopicDescription(name: name, partitions: partitions, configs: config.entries, overrides: definition.overrides,
                                replicationFactor: partitions.compactMap { $0.replica?.replicas.count }.max() ?? 1)
    }

    /// The topics, by name, with their partition counts.
    public func listTopics() -> [(name: String, partitions: Int32)] {
        storage.topics.all.map { ($0.name, $0.partitions) }
    }

    /// Creates a topic (`partitions` nil: the broker's default count). In cluster mode the
    /// cluster records it (`replicationFactor` nil: the cluster's default) and the answer
    /// describes it as recorded, with no local offsets (use `createClusterTopic` for the
    /// assignment). `assignment`: replicas chosen by the caller, one list per partition (in a
    /// cluster any registered brokers; a single broker holds every partition alone).
    public func createTopic(_ name: String, partitions: Int32?, replicationFactor: Int? = nil, assignment: [[Int32]]? = nil,
                            configs: [String: String] = [:]) async throws -> TopicDescription {
        let count = partitions ?? config.defaultPartitions
        guard count > 0 else { throw BrokerError(.invalidRequest, "a topic needs at least one partition, not \(count)") }
        guard count <= config.maxPartitionsPerTopic else {
            throw BrokerError(.invalidRequest, "\(count) partitions is over the limit of \(config.maxPartitionsPerTopic) per topic")
        }
        if let admin = clusterAdministration {
            try validateClusterTopicOverrides(configs)
            let created = try await admin.createTopic(name, partitions: count, replicationFactor: replicationFactor, assignment: assignment, configs: configs)
            return TopicDescription(
                name: name,
                partitions: created.partitions.indices.map { p in
                    PartitionDescription(partition: Int32(p), logStartOffset: 0, logEndOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 0, stopped: false)
                },
                configs: effectiveConfigs(created.overrides), overrides: created.overrides, replicationFactor: created.replicationFactor)
        }
        if let replicationFactor, replicationFactor != 1 {
            throw BrokerError(.invalidReplicationFactor, "a single-node Spool broker keeps one replica; replication factor \(replicationFactor) is not possible")
        }
        try checkSingleNodeAssignment(assignment, partitions: count)
        return try await BrokerError.translateAsync {
            try await io.run { [self] in
                try storage.createTopic(name, partitions: count, overrides: configs)
                events.topicCreated(name, partitions: count, overrides: configs)
                return try describeTopic(name)
            }
        }
    }

    /// Deletes a topic with its data and committed offsets (in cluster mode: everywhere).
    public func deleteTopic(_ name: String) async throws {
        if let admin = clusterAdministration { return try await admin.deleteTopic(name) }
        try await deleteHostedTopic(name)
    }

    /// Deletes this broker's copy of a topic (the cluster layer calls it when the cluster deleted it).
    public func deleteHostedTopic(_ name: String) async throws {
        try await BrokerError.translateAsync {
            try await io.run { [storage, producers] in
                try storage.deleteTopic(name)
                producers.forget(topic: name)
            }
        }
        events.topicDeleted(name)
    }

    /// Brings the topic's stopped partitions back without a restart: each is re-opened and
    /// re-checked as after an unclean stop (storage's `LogManager.recover(topic:)`).
    /// Returns the partitions that were stopped and run again, and the topic as it is now.
    public func recoverTopic(_ name: String) async throws -> (recovered: [Int32], topic: TopicDescription) {
        try await BrokerError.translateAsync {
            try await io.run { [self] in
                let recovered = try storage.recover(topic: name)
                return (recovered, try describeTopic(name))
            }
        }
    }

    /// Merges config overrides into a topic's.
    public func alterTopic(_ name: String, set: [String: String]) async throws -> TopicDescription {
        if clusterAdministration != nil {
            try await replaceTopicOverrides(name) { $0.merging(set) { _, new in new } }
            return try describeTopic(name)
        }
        return try await BrokerError.translateAsync {
            try await io.run { [self] in
                _ = try storage.alterTopic(name, set: set)
                events.topicAltered(name, set: set)
                return try describeTopic(name)
            }
        }
    }

    // MARK: Produce

    /// Appends each partition's batches (validated, offsets assigned) on the partition's
    /// serial queue and answers per partition; with `.all`, once each append is fsynced
    /// and, in cluster mode, replicated to the ISR (the high watermark passed it) within
    /// `timeoutMillis` (nil: the broker's default). The future never fails: failures are
    /// per partition.
    public func produce(
        topic: String, _ partitions: [(partition: Int32, batches: ByteBuffer)], acks: Acks, timeoutMillis: Int64? = nil,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<[PartitionProduceResult]> {
        let futures = partitions.map { p in
            produce(TopicPartition(topic, p.partition), p.batches, acks: acks, timeoutMillis: timeoutMillis, on: eventLoop)
        }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop)
    }

    /// Appends one partition's batches; never fails (the error is in the result).
    ///
    /// In cluster mode only the leader appends (NOT_LEADER_OR_FOLLOWER otherwise), stamping
    /// its leader epoch on every batch; acks=all with the ISR below `min.insync.replicas`
    /// is refused before the append (NOT_ENOUGH_REPLICAS, nothing written).
    /// Clients cannot append to the offsets topic (Kafka: "cannot append to internal topic");
    /// the group coordinator does, with `internal`.
    public func produce(_ tp: TopicPartition, _ batches: ByteBuffer, acks: Acks, timeoutMillis: Int64? = nil, internal: Bool = false,
                        on eventLoop: EventLoop) -> EventLoopFuture<PartitionProduceResult> {
        if tp.topic == ReplicatedGroupOffsets.topic, !`internal`, groupOwnership != nil {
            var refused = PartitionProduceResult(topicPartition: tp)
            refused.error = BrokerError(.invalidTopicName, "cannot append to the internal topic \(tp.topic)")
            return eventLoop.makeSucceededFuture(refused)
        }
        let storage = storage
        let notifier = notifier
        let producers = producers
        let maxDecompressed = config.maxDecompressedBatchBytes
        let metrics = events.metrics
        let transactions = transactions
        let timeout = max(1, timeoutMillis ?? config.defaultProduceTimeoutMillis)
        let appended = io.run(tp, on: eventLoop) { [self] () throws -> (log: PartitionLog, result: AppendResult, leader: LeaderState?) in
            let lead = try leaderEpochForAppend(tp)
            if acks == .all, let leader = lead.leader, leader.isrBelowMin {
                throw BrokerError(.notEnoughReplicas, "the ISR of \(tp) is \(leader.replica.isr), below min.insync.replicas")
            }
            var batches = batches
            let appended = try Self.append(tp, &batches, storage: storage, producers: producers, notifier: notifier,
                                           maxDecompressedBytes: maxDecompressed, metrics: metrics, transactions: transactions,
                                           leaderEpoch: lead.epoch)
            lead.leader?.appended()
            return (appended.log, appended.result, lead.leader)
        }
        let durable: EventLoopFuture<(log: PartitionLog, result: AppendResult, leader: LeaderState?)>
        if acks == .all {
            durable = appended.flatMap { appended in
                eventLoop.makeFutureWithTask {
                    try await appended.log.waitUntilDurable(appended.result.lastOffset + 1)
                    return appended
                }
            }.flatMap { appended in
                guard let leader = appended.leader else { return eventLoop.makeSucceededFuture(appended) }
                return leader.waitForHighWatermark(appended.result.lastOffset + 1, timeoutMillis: timeout, on: eventLoop).map { appended }
            }
        } else {
            durable = appended
        }
        return durable.map { appended in
            var r = PartitionProduceResult(topicPartition: tp)
            r.baseOffset = appended.result.baseOffset
            r.lastOffset = appended.result.lastOffset
            r.logStartOffset = appended.log.startOffset
            return r
        }.recover { error in
            var r = PartitionProduceResult(topicPartition: tp)
            r.error = BrokerError.translating(error)
            return r
        }
    }

    /// Adds one loose record to the partition's open batch (the accumulator); `completion`
    /// gets its offset once its batch is in the log. Compression and the append run on
    /// the I/O pool.
    public func produceRecord(
        _ tp: TopicPartition, codec: CompressionCodec, lingerMillis: Int64, key: [UInt8]?, value: [UInt8]?,
        headers: [RecordHeader], timestamp: Int64, eventLoop: EventLoop,
        completion: @escaping @Sendable (Result<Int64, Error>) -> Void
    ) {
        accumulator.add(tp, codec: codec, lingerMillis: lingerMillis, key: key, value: value, headers: headers,
                        timestamp: timestamp, eventLoop: eventLoop) { completion($0.mapError(BrokerError.translating)) }
    }

    /// The one append path (Produce and the loose-record accumulator): validate (headers
    /// and CRC, then every record, with this I/O thread's scratch buffer), check idempotent
    /// producers' sequences, append, wake readers. Runs on the partition's serial queue, so
    /// the sequence check and the append are one step. A retried batch already in the log
    /// is answered with its original offsets and not written again.
    static func append(
        _ tp: TopicPartition, _ batches: inout ByteBuffer, storage: LogManager, producers: ProducerStateManager,
        notifier: AppendNotifier, maxDecompressedBytes: Int, metrics: BrokerMetrics, transactions: TransactionCoordinator? = nil,
        leaderEpoch: Int32? = nil
    ) throws -> (log: PartitionLog, result: AppendResult) {
        let log = try storage.partition(tp)
        let bytes = batches.readableBytes
        let produced = try log.validate(batches)
        let limits = RecordBatchValidator.Limits(
            maxDecompressedBytes: maxDecompressedBytes, timestampDifferenceMaxMillis: log.config.timestampDifferenceMaxMillis)
        try RecordValidation.validate(batches, produced, limits: limits, nowMillis: PartitionLog.wallClockMillis())
        let transactional = produced.batches.contains { $0.header.isTransactional }
        if transactional, let transactions {
            try transactions.checkProduce(produced, tp, log: log)
        }
        let outcome = try producers.append(produced, to: log) { try log.append(validated: produced, &batches, leaderEpoch: leaderEpoch) }
        switch outcome {
        case .appended(let result):
            if transactional, let transactions { transactions.recordAppended(produced, at: result, log: log) }
            metrics.topic(tp.topic).recordsIn(count: result.recordCount, bytes: bytes)
            notifier.notify(tp)
            return (log, result)
        case .duplicate(let base, let last):
            return (log, AppendResult(baseOffset: base, lastOffset: last, recordCount: last - base + 1))
        }
    }

    /// InitProducerId for an idempotent producer (no transactions): a fresh id at epoch 0,
    /// or the given id with its epoch bumped. Runs on the I/O pool (ids are reserved
    /// durably, a block at a time).
    public func initProducerId(producerId: Int64 = -1, producerEpoch: Int16 = -1) async throws -> ProducerStateManager.ProducerIdAndEpoch {
        try await BrokerError.translateAsync {
            try await io.run { [producers] in try producers.initProducerId(producerId: producerId, producerEpoch: producerEpoch) }
        }
    }

    // MARK: Fetch

    /// Starts a fetch: planned at once, answered when it holds `minBytes`, an error, or
    /// its wait ran out. Cancel it when the client goes away.
    public func fetch(_ spec: FetchSpec, on eventLoop: EventLoop) -> PendingFetch {
        var spec = spec
        spec.maxWaitMillis = max(0, min(spec.maxWaitMillis, Int64(config.maxFetchWaitMillis)))
        let pending = PendingFetch(broker: self, spec: spec, eventLoop: eventLoop)
        if eventLoop.inEventLoop {
            pending.attempt()
        } else {
            eventLoop.execute { pending.attempt() }
        }
        return pending
    }

    /// Finds, for each partition, the span of whole batches to send from its offset, within
    /// the fetch's byte limits; the first batch found is always taken (KIP-74). Spans are
    /// located by `PartitionReader.locate`, the one place consumer reads are bounded.
    func plan(_ spec: FetchSpec) -> [FetchedPartition] {
        var remaining = spec.maxBytes
        var planned: [FetchedPartition] = []
        planned.reserveCapacity(spec.partitions.count)
        var anySpan = false
        for p in spec.partitions {
            var entry = FetchedPartition(topicPartition: p.topicPartition)
            var log: PartitionLog?
            do {
                log = try storage.partition(p.topicPartition)
                try checkLeaderEpoch(p.topicPartition, p.currentLeaderEpoch)
                var bound: Int64?
                if spec.replicaId >= 0 {
                    // A follower: reads to the log end; its offset is its log end.
                    if let diverging = try recordReplicaFetch(p.topicPartition, replica: spec.replicaId, offset: p.offset,
                                                              lastFetchedEpoch: p.lastFetchedEpoch, log: log!) {
                        entry.divergingEpoch = diverging
                        entry.highWatermark = log!.highWatermark
                        entry.logStartOffset = log!.startOffset
                        planned.append(entry)
                        continue
                    }
                } else {
                    try checkServesConsumers(p.topicPartition)
                    bound = log!.highWatermark
                }
                let want = min(p.maxBytes, remaining)
                if want > 0 || !anySpan {
                    let read = try PartitionReader.locate(log!, from: p.offset, maxBytes: max(want, 1), upTo: bound)
                    entry.highWatermark = read.highWatermark
                    entry.logStartOffset = read.logStartOffset
                    if let span = read.span {
                        // The first span may exceed the fetch's byte limits (KIP-74) but
                        // never what one response can carry; later ones must fit in what is left.
                        if anySpan ? span.length <= remaining : span.length <= spec.spanBytesMax {
                            entry.planned = PlannedSpan(log: log!, span: span)
                            remaining -= span.length
                            anySpan = true
                        } else if !anySpan {
                            throw BrokerError(.recordTooLarge, "the batch at offset \(p.offset) of \(p.topicPartition) is \(span.length) bytes, more than a response can carry (\(spec.spanBytesMax))")
                        }
                    }
                    try transactions.bound(&entry, log: log!, from: p.offset, readCommitted: spec.readCommitted)
                } else {
                    let offsets = PartitionReader.offsets(of: log!)
                    entry.highWatermark = offsets.highWatermark
                    entry.logStartOffset = offsets.logStartOffset
                    entry.lastStableOffset = try transactions.partitions.lastStableOffset(log!, highWatermark: offsets.highWatermark)
                }
            } catch {
                entry.error = BrokerError.reading(error)
                if let log {
                    let offsets = PartitionReader.offsets(of: log)
                    entry.highWatermark = offsets.highWatermark
                    entry.logStartOffset = offsets.logStartOffset
                    entry.lastStableOffset = (try? transactions.partitions.lastStableOffset(log, highWatermark: offsets.highWatermark)) ?? -1
                }
            }
            planned.append(entry)
        }
        return planned
    }

    // MARK: Push (subscriptions)

    /// Calls `callback` once, at the next append to `tp` (or at shutdown). Returns a
    /// token for `cancelWait`.
    public func waitForAppend(_ tp: TopicPartition, _ callback: @escaping @Sendable () -> Void) -> UInt64 {
        notifier.register(tp, callback)
    }

    /// Cancels a `waitForAppend` that has not fired.
    public func cancelWait(_ tp: TopicPartition, _ token: UInt64) {
        notifier.cancel(tp, token)
    }

    /// Long polls and subscriptions waiting for an append now (for tests and metrics: a
    /// cancelled or closed call must leave none behind).
    public var waitingForAppends: Int { notifier.count }

    /// Wakes every waiting fetch and subscription (at shutdown).
    public func wakeAllWaiters() {
        notifier.notifyAll()
    }

    // MARK: Offsets

    /// One offset lookup (ListOffsets).
    public func listOffset(_ tp: TopicPartition, _ spec: OffsetSpec, readCommitted: Bool = false) throws -> ListedOffset {
        try BrokerError.translate {
            let log = try storage.partition(tp)
            try checkServesConsumers(tp)
            switch spec {
            case .earliest: return ListedOffset(offset: log.startOffset)
            case .latest where readCommitted:
                return ListedOffset(offset: try transactions.partitions.lastStableOffset(log, highWatermark: log.highWatermark))
            case .latest: return ListedOffset(offset: log.highWatermark)
            case .timestamp(let t):
                guard let found = try log.record(atOrAfter: t) else { return ListedOffset(offset: -1) }
                return ListedOffset(offset: found.offset, timestamp: found.timestamp)
            case .maxTimestamp:
                guard let found = try log.maxTimestampRecord() else { return ListedOffset(offset: -1) }
                return ListedOffset(offset: found.offset, timestamp: found.timestamp)
            }
        }
    }

    /// Stores committed offsets for a consumer outside any generation (assign mode: the
    /// group must have no members). Partitions refused one by one come back with their code.
    public func commitOffsets(group: String, _ offsets: [TopicPartition: (offset: Int64, metadata: String)]) async throws -> [TopicPartition: GroupCoordinatorError.Code] {
        var request = GroupCoordinator.CommitRequest(groupId: group, offsets: [:])
        for (tp, o) in offsets { request.offsets[tp] = .init(offset: o.offset, metadata: o.metadata) }
        return try await groups.commit(request)
    }

    /// A group's committed offsets, optionally only for some topics.
    public func committedOffsets(group: String, topics: Set<String> = []) throws -> [GroupCoordinator.FetchedOffset] {
        try groups.fetchOffsets(groupId: group, partitions: nil).filter { topics.isEmpty || topics.contains($0.partition.topic) }
    }

    /// The groups with members or committed offsets.
    public func listGroups() throws -> [String] {
        try groups.listGroups().map(\.groupId)
    }

    // MARK: Lifecycle

    /// Stops the storage cleanly (open batches appended, flush, indexes, clean marker).
    public func close() async throws {
        transactions.shutdown()
        groups.shutdown()
        groupOwnershipBox.withLockedValue { $0 = nil }
        accumulator.flushAll()
        // Let the I/O pool finish what is queued (the batches just closed included).
        try await io.shutdown()
        notifier.notifyAll()
        cleaner.stop()
        try storage.close()
    }

    /// `close()` for callers that cannot await (tests' deinit); blocks the calling thread.
    public func closeBlocking() throws {
        transactions.shutdown()
        groups.shutdown()
        groupOwnershipBox.withLockedValue { $0 = nil }
        accumulator.flushAll()
        try io.syncShutdown()
        notifier.notifyAll()
        cleaner.stop()
        try storage.close()
    }
}

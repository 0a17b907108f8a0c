import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol
import SpoolRecords

/// Batches records per partition and sends them to the broker.
///
/// ```swift
/// let producer = SpoolProducer(connection: connection)
/// let where = try await producer.send(topic: "events", key: Array("user-1".utf8), value: Array("hello".utf8))
/// try await producer.flush()
/// ```
///
/// Three ways to send, from simplest to fastest:
/// - `send(topic:key:value:) async -> RecordMetadata` waits for the acknowledgement;
/// - `send(topic:key:value:completion:)` calls back once per record;
/// - through a `ProducerTopic` handle, `send(_:key:value:)` (`ByteBuffer`s) and
///   `trySend(_:key:value:)` (raw bytes, copied into the batch, never waits)
///   store nothing per record: outcomes arrive once per batch as `DeliveryReport`s
///   to the `onDelivery` handler given at init.
///
/// Keys pick their partition with Kafka's murmur2 partitioner; keyless records
/// stick to one partition until its batch closes (sticky partitioning). Batches
/// are compressed and sent on the connection's event loop, several partitions of a
/// topic per request. Retriable failures (broker unavailable, connection lost,
/// overloaded) are retried with backoff, reconnecting if needed, until
/// `deliveryTimeoutMillis`; a partition keeps its order (see `PartitionQueue`).
/// Records too large for the topic, the request or the broker's frames fail alone
/// with `ProducerError.Code.recordTooLarge`, before anything is sent.
public final class SpoolProducer: Sendable {
    /// Called once per record with where it landed or why it failed, on a client thread.
    public typealias Completion = @Sendable (Result<RecordMetadata, Error>) -> Void
    /// Called once per batch with its outcome, on a client thread.
    public typealias DeliveryHandler = @Sendable (DeliveryReport) -> Void

    /// Where each partition's batches go: its leader's connection (`BrokerRouter.leader(of:)`).
    /// When a leader's connection breaks or a broker answers NOT_LEADER_OR_FOLLOWER the
    /// producer refreshes the metadata, reconnects, and resends what failed (same producer
    /// id, epoch and sequences: the new leader answers a batch it already has with its
    /// original offsets).
    public let router: BrokerRouter
    /// The bootstrap broker's connection: producer ids and transactions go here.
    public var connection: SpoolConnection { router.bootstrap }
    public let config: ProducerConfig
    let onDelivery: DeliveryHandler?
    /// Made from a connection: `close()` closes the leader connections its router opened.
    let ownsRouter: Bool
    let state: NIOLockedValueBox<ProducerState>
    /// Compression, request writing and timers run here.
    let eventLoop: EventLoop

    /// A producer over one connection: it learns the cluster from that broker and opens
    /// connections to the other leaders itself (a single broker leads everything).
    public convenience init(connection: SpoolConnection, config: ProducerConfig = ProducerConfig(), onDelivery: DeliveryHandler? = nil) {
        self.init(router: BrokerRouter(connection: connection), config: config, onDelivery: onDelivery, ownsRouter: true)
    }

    /// A producer that sends each partition's batches to its leader (`BrokerRouter`, which
    /// stays the caller's: close it after the producer). Producers and consumers sharing a
    /// router share its connections.
    public convenience init(router: BrokerRouter, config: ProducerConfig = ProducerConfig(), onDelivery: DeliveryHandler? = nil) {
        self.init(router: router, config: config, onDelivery: onDelivery, ownsRouter: false)
    }

    /// `ownsRouter`: `close()` closes the connections the router opened (not the caller's one).
    init(router: BrokerRouter, config: ProducerConfig, onDelivery: DeliveryHandler?, ownsRouter: Bool) {
        self.router = router
        self.ownsRouter = ownsRouter
        let connection = router.bootstrap
        self.config = config
        self.onDelivery = onDelivery
        // The connection's own loop when it owns a one-thread group (its writes then need no hop).
        self.eventLoop = connection.group.next()
        var initial = ProducerState()
        initial.requestPayloadBytesMax = ProducerLimits(
            config: config, maxFrameBytes: Int(connection.handshake.maxFrameBytes), maxMessageBytes: .max
        ).requestPayloadBytesMax
        initial.maxInFlightRequests = Self.maxInFlight(config, connection)
        initial.transactional = config.transactionalId != nil
        state = NIOLockedValueBox(initial)
    }

    static func maxInFlight(_ config: ProducerConfig, _ connection: SpoolConnection) -> Int {
        let broker = Int(connection.handshake.maxInFlight)
        var n = broker > 0 ? min(config.maxInFlightRequests, broker) : config.maxInFlightRequests
        if config.isIdempotent { n = min(n, ProducerConfig.idempotentInFlightMax) }
        return max(1, n)
    }

    /// Asks the broker for a producer id and epoch (once), for idempotent batches.
    private func ensureIdentity() async throws {
        if config.transactionalId != nil { return try await initTransactions() }
        guard config.idempotent, state.withLockedValue({ $0.identity == nil }) else { return }
        let response: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, Spool_V1_InitProducerIdRequest())
        let identity = ProducerIdentity(producerId: response.producerID, epoch: Int16(clamping: response.producerEpoch))
        state.withLockedValue { s in
            if s.identity == nil { s.identity = identity }
        }
    }

    // MARK: Topics

    /// The handle of `name`, learning its partitions and limits from the broker the first time.
    public func topic(_ name: String) async throws -> ProducerTopic {
        if let known = state.withLockedValue({ $0.knownTopic(name) }) { return known }
        // Every send passes here before its first batch: the identity is there before any batch closes.
        try await ensureIdentity()
        let description = try await SpoolAdmin(connection).describeTopic(name)
        // Learn the leaders before the first batch (a single broker answers itself).
        _ = try? await router.refresh(topics: [name])
        let partitions = Int32(description.partitions.count)
        guard partitions > 0 else { throw ProducerError(.noPartitions, "topic \(name) has no partitions") }
        let maxMessageBytes = description.configs.first { $0.key == "max.message.bytes" }.flatMap { Int($0.value) }
            ?? ProducerLimits.defaultMaxMessageBytes
        let limits = ProducerLimits(config: config, maxFrameBytes: Int(connection.handshake.maxFrameBytes), maxMessageBytes: maxMessageBytes)
        return state.withLockedValue { s in
            if let index = s.topicIndex[name] { return s.topics[index].handle }
            let handle = ProducerTopic(name: name, partitionCount: partitions, limits: limits, index: s.topics.count, owner: ObjectIdentifier(self))
            s.topics.append(.init(handle: handle, partitions: Array(repeating: PartitionQueue(), count: Int(partitions)),
                                  sticky: Int32.random(in: 0..<partitions)))
            s.topicIndex[name] = handle.index
            return handle
        }
    }

    // MARK: Sending

    /// Sends one record; returns once the broker acknowledged it (per `acks`).
    public func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil
    ) async throws -> RecordMetadata {
        while true {
            do {
                return try await withCheckedThrowingContinuation { c in
                    do {
                        let outcome = try Self.withBytes(key, value) { k, v in
                            try append(.name(topic), partition: partition, key: k, value: v, headers: headers, timestamp: timestamp,
                                       completion: .continuation(c))
                        }
                        switch outcome {
                        case .queued: break
                        case .needsRoom: c.resume(throwing: NeedsRoom())
                        case .needsTopic: c.resume(throwing: NeedsTopic())
                        case .needsPartition(let ref, let name): c.resume(throwing: NeedsPartition(ref: ref, topic: name))
                        }
                    } catch {
                        c.resume(throwing: error)
                    }
                }
            } catch is NeedsRoom {
                await waitForRoom(recordBytes: Self.bound(key?.count, value?.count, headers))
            } catch is NeedsTopic {
                _ = try await self.topic(topic)
            } catch let needs as NeedsPartition {
                try await addToTransaction(needs.ref, topic: needs.topic)
            }
        }
    }

    /// Queues one record and returns as soon as it is buffered (it waits only while
    /// `bufferBytes` are in use, or to learn a new topic); `completion` learns the
    /// outcome, including a record refused before sending (too large, unknown partition).
    public func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil, completion: @escaping Completion
    ) async throws {
        while true {
            let outcome: AppendOutcome
            do {
                outcome = try Self.withBytes(key, value) { k, v in
                    try append(.name(topic), partition: partition, key: k, value: v, headers: headers, timestamp: timestamp,
                               completion: .callback(completion))
                }
            } catch let error as ProducerError where error.code != .closed {
                completion(.failure(error))
                return
            }
            switch outcome {
            case .queued: return
            case .needsRoom: await waitForRoom(recordBytes: Self.bound(key?.count, value?.count, headers))
            case .needsTopic: _ = try await self.topic(topic)
            case .needsPartition(let ref, let name): try await addToTransaction(ref, topic: name)
            }
        }
    }

    /// Queues one record whose key and value are `ByteBuffer`s (their readable bytes,
    /// copied into the batch). Waits only for buffer memory. Fire and forget: the
    /// outcome reaches the `onDelivery` handler with its batch. Throws for a record
    /// refused before sending (`ProducerError`).
    public func send(
        _ topic: ProducerTopic, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil
    ) async throws {
        while true {
            let outcome = try Self.withBytes(key, value) { k, v in
                try append(.handle(topic), partition: partition, key: k, value: v, headers: headers, timestamp: timestamp, completion: nil)
            }
            switch outcome {
            case .queued: return
            case .needsPartition(let ref, let name): try await addToTransaction(ref, topic: name)
            default: await waitForRoom(recordBytes: Self.bound(key?.readableBytes, value?.readableBytes, headers))
            }
        }
    }

    /// Queues one record from raw bytes (copied into the batch before returning) and
    /// never waits: returns false when buffer memory is full; then `await waitForRoom()`
    /// and try again. Fire and forget, like `send(_:key:value:)`. In a transaction, a
    /// partition must have been sent to with an async `send` first (which adds it to the
    /// transaction): else `ProducerError.Code.transactionState`.
    public func trySend(
        _ topic: ProducerTopic, partition: Int32? = nil, key: UnsafeRawBufferPointer? = nil, value: UnsafeRawBufferPointer?,
        headers: [RecordHeader] = [], timestamp: Int64? = nil
    ) throws -> Bool {
        let outcome = try append(.handle(topic), partition: partition, key: key, value: value, headers: headers, timestamp: timestamp, completion: nil)
        if case .needsPartition(let ref, let name) = outcome {
            throw ProducerError(.transactionState, "partition \(ref.partition) of \(name) is not in the transaction yet: send to it with an async send first")
        }
        return outcome == .queued
    }

    /// Waits until buffer memory is at most three quarters used (or empty).
    public func waitForRoom() async {
        await waitForRoom(recordBytes: config.bufferBytes / 4)
    }

    /// Sends every open batch now and waits until every record queued so far has its outcome.
    public func flush() async throws {
        let drain = state.withLockedValue { $0.closeAll(at: .now) }
        if drain { scheduleDrain() }
        await wait { $0.isIdle }
    }

    /// Flushes, refuses further sends, and stops reconnecting (the connection stays open: it is
    /// the caller's; made from a connection, the producer closes the other brokers' connections).
    public func close() async throws {
        try await flush()
        let reconnect = state.withLockedValue { s -> Task<Void, Never>? in
            s.closed = true
            defer { s.reconnectTask = nil }
            return s.reconnectTask
        }
        reconnect?.cancel()
        await reconnect?.value
        if ownsRouter { await router.close() }
    }

    // MARK: Appending

    struct NeedsRoom: Error {}
    struct NeedsTopic: Error {}
    struct NeedsPartition: Error {
        let ref: PartitionRef
        let topic: String
    }

    /// A topic by handle, or by name (looked up under the append's lock; a repeat of the
    /// last name costs a string comparison, not a hash).
    enum TopicRef {
        case handle(ProducerTopic)
        case name(String)
    }

    enum AppendOutcome: Equatable {
        case queued
        /// Buffer memory is full; nothing was queued.
        case needsRoom
        /// The topic is not known yet (`topic(_:)` learns it); nothing was queued.
        case needsTopic
        /// The partition is not in the open transaction yet (`addToTransaction` adds it); nothing was queued.
        case needsPartition(PartitionRef, String)
    }

    /// Encodes one record into its partition's open batch, under one lock. Throws
    /// `ProducerError` for a record refused before sending.
    func append(
        _ topicRef: TopicRef, partition: Int32?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [RecordHeader], timestamp: Int64?, completion: RecordCompletion?
    ) throws -> AppendOutcome {
        let recordBytes = Self.bound(key?.count, value?.count, headers)
        let keyHash = key.map { KafkaPartitioner.murmur2($0) & 0x7FFF_FFFF } // Kafka's partition = this % count
        let ts = timestamp ?? WallClock.nowMillis()
        var opened: ProducerBatch?
        var drain = false
        let outcome = try state.withLockedValue { s -> AppendOutcome in
            if s.closed { throw ProducerError(.closed, "the producer is closed") }
            let topic: ProducerTopic
            switch topicRef {
            case .handle(let handle):
                precondition(handle.owner == ObjectIdentifier(self), "a ProducerTopic is used with the producer that made it")
                topic = handle
            case .name(let name):
                guard let known = s.knownTopic(name) else { return .needsTopic }
                topic = known
            }
            guard recordBytes <= topic.maxRecordBytes else {
                throw ProducerError(
                    .recordTooLarge,
                    "record of \(recordBytes) bytes is over the limit of \(topic.maxRecordBytes) for topic \(topic.name) (max.message.bytes, maxRequestBytes and the broker's frame size)")
            }
            let chosen: Int32
            if let partition {
                guard partition >= 0 && partition < topic.partitionCount else {
                    throw ProducerError(.unknownPartition, "topic \(topic.name) has partitions 0–\(topic.partitionCount - 1), not \(partition)")
                }
                chosen = partition
            } else if let keyHash {
                chosen = keyHash % topic.partitionCount
            } else {
                chosen = s.topics[topic.index].sticky
            }
            let ref = PartitionRef(topic: topic.index, partition: chosen)
            if s.transactional {
                try s.transaction.checkSendable()
                if !s.transaction.partitions.contains(ref) { return .needsPartition(ref, topic.name) }
            }
            guard s.bufferedBytes + recordBytes <= config.bufferBytes || s.bufferedBytes == 0 else { return .needsRoom }
            let batchBytesTarget = min(config.batchBytes, topic.batchBytesMax)
            let p = Int(ref.partition)
            // A record that would push the open batch past its size closes it first.
            if let open = s.topics[ref.topic].partitions[p].open, open.builder!.uncompressedBytes + recordBytes > batchBytesTarget {
                drain = s.close(ref, at: .now) || drain
            }
            let batch: ProducerBatch
            if let open = s.topics[ref.topic].partitions[p].open {
                batch = open
            } else {
                var builder = s.spareBuilders.popLast()
                    ?? RecordBatchBuilder(codec: config.compression.codec, initialCapacity: batchBytesTarget + 1024)
                builder.isTransactional = s.transactional
                batch = ProducerBatch(
                    topic: topic, partition: ref.partition, builder: builder, openedAt: .now,
                    deadline: .now() + .milliseconds(Int64(config.deliveryTimeoutMillis)))
                s.topics[ref.topic].partitions[p].open = batch
                s.openBatches += 1
                opened = batch
            }
            batch.builder!.append(key: key, value: value, headers: headers, timestamp: ts)
            if let completion { batch.completions.append((Int32(batch.builder!.recordCount - 1), completion)) }
            batch.reservedBytes += recordBytes
            s.bufferedBytes += recordBytes
            // Full when the next record of this size would not fit.
            if batch.builder!.uncompressedBytes + recordBytes > batchBytesTarget {
                drain = s.close(ref, at: .now) || drain
                if opened === batch { opened = nil }
            }
            return .queued
        }
        if let opened { armLinger(opened) }
        if drain { scheduleDrain() }
        return outcome
    }

    /// Closes `batch` after `linger.ms` unless it closed (full) meanwhile.
    private func armLinger(_ batch: ProducerBatch) {
        let task = { @Sendable [self] in
            let drain = state.withLockedValue { s -> Bool in
                let ref = PartitionRef(topic: batch.topic.index, partition: batch.partition)
                guard s.topics[ref.topic].partitions[Int(ref.partition)].open === batch else { return false }
                return s.close(ref, at: .now)
            }
            if drain { self.drain() }
        }
        if config.lingerMillis > 0 {
            eventLoop.scheduleTask(in: .milliseconds(Int64(config.lingerMillis)), task)
        } else {
            eventLoop.execute(task)
        }
    }

    /// Waits until buffer memory has room for a record of `recordBytes` and is at
    /// most three quarters used, or is empty.
    func waitForRoom(recordBytes: Int) async {
        let budget = config.bufferBytes
        await wait { s in
            s.bufferedBytes == 0 || (s.bufferedBytes + recordBytes <= budget && s.bufferedBytes <= budget - budget / 4)
        }
    }

    /// Waits until `condition` holds; re-checked whenever a batch finishes.
    private func wait(until condition: @escaping @Sendable (ProducerState) -> Bool) async {
        while true {
            let done = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let now = state.withLockedValue { s -> Bool in
                    if condition(s) { return true }
                    s.waiters.append(c)
                    return false
                }
                if now { c.resume(returning: true) }
            }
            if done { return }
        }
    }

    static func bound(_ keyBytes: Int?, _ valueBytes: Int?, _ headers: [RecordHeader]) -> Int {
        ProducerLimits.recordBytesBound(keyBytes: keyBytes, valueBytes: valueBytes, headers: headers)
    }

    static func withBytes<R>(
        _ key: [UInt8]?, _ value: [UInt8]?, _ body: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) throws -> R
    ) rethrows -> R {
        func with(_ b: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
            guard let b else { return try body(nil) }
            return try b.withUnsafeBytes { try body($0) }
        }
        return try with(key) { k in try with(value) { v in try body(k, v) } }
    }

    static func withBytes<R>(
        _ key: ByteBuffer?, _ value: ByteBuffer?, _ body: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) throws -> R
    ) rethrows -> R {
        func with(_ b: ByteBuffer?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
            guard let b else { return try body(nil) }
            return try b.withUnsafeReadableBytes { try body($0) }
        }
        return try with(key) { k in try with(value) { v in try body(k, v) } }
    }
}

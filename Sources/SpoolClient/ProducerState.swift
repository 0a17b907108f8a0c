import NIOCore
import SpoolRecords

/// A partition of one of the producer's topics.
struct PartitionRef: Sendable, Hashable {
    var topic: Int
    var partition: Int32
}

/// Everything a `SpoolProducer`'s lock guards: per-partition queues, buffer memory,
/// requests in flight, waiters and the connection. The methods here decide; they do
/// no I/O and call no user code (the producer runs the `Effects` after unlocking).
struct ProducerState: Sendable {
    /// A topic's queues, found by the index in its `ProducerTopic` handle.
    struct TopicQueues: Sendable {
        let handle: ProducerTopic
        var partitions: [PartitionQueue]
        /// The partition keyless records stick to until its batch closes.
        var sticky: Int32
    }

    /// What to do once the lock is released.
    struct Effects: Sendable {
        var finished: [(batch: ProducerBatch, outcome: Result<Int64, Error>)] = []
        var waiters: [CheckedContinuation<Bool, Never>] = []
        var drain = false
        /// Partitions to list again once their retry backoff has passed.
        var retryTimers: [(PartitionRef, NIODeadline)] = []
        /// Some partition had no leader to send to (unknown, or its connection down).
        var needsRoute = false
    }

    var topics: [TopicQueues] = []
    var topicIndex: [String: Int] = [:]
    /// The topic of the last send by name: repeated sends compare the name instead of hashing it.
    var lastTopic = -1
    /// Partitions with batches to send, in the order they became sendable.
    var sendable = CircularBuffer<PartitionRef>()
    var bufferedBytes = 0
    var openBatches = 0
    /// Closed batches whose records have not all been told their outcome yet
    /// (decided outcomes count until reported, so that `flush` returns after the callbacks).
    var pendingBatches = 0
    var inFlightRequests = 0
    var drainScheduled = false
    /// Woken (all) whenever buffer memory is released or the producer becomes idle.
    var waiters: [CheckedContinuation<Bool, Never>] = []
    var spareBuilders: [RecordBatchBuilder] = []
    var sparePayloads: [ByteBuffer] = []
    var closed = false
    var reconnecting = false
    var reconnectTask: Task<Void, Never>?
    /// Why the last reconnect attempt failed (reported with batches that expire unsent).
    var connectError: Error?
    var identity: ProducerIdentity?
    /// An idempotent batch failed for good, leaving a gap in its partition's sequence:
    /// nothing is sent until the epoch is bumped and every partition starts again at 0.
    var epochBumpNeeded = false
    var bumpingEpoch = false
    /// Whether the producer has a `transactionalId`; its transaction's state.
    var transactional = false
    var transaction = ProducerTransaction()
    /// From the config and the current connection's handshake.
    var requestPayloadBytesMax = 1 << 20
    var maxInFlightRequests = 1

    var isIdle: Bool { openBatches == 0 && pendingBatches == 0 }

    /// The handle of a known topic; a repeat of the last name costs a string comparison, not a hash.
    mutating func knownTopic(_ name: String) -> ProducerTopic? {
        if lastTopic >= 0 && topics[lastTopic].handle.name == name { return topics[lastTopic].handle }
        guard let index = topicIndex[name] else { return nil }
        lastTopic = index
        return topics[index].handle
    }

    /// Lists a partition as having work, unless it is listed already.
    mutating func list(_ ref: PartitionRef) {
        let p = Int(ref.partition)
        guard !topics[ref.topic].partitions[p].listed, topics[ref.topic].partitions[p].hasWork else { return }
        topics[ref.topic].partitions[p].listed = true
        sendable.append(ref)
    }

    /// Closes the open batch of a partition and queues it. Returns true if the caller
    /// must schedule a drain (none is scheduled yet).
    mutating func close(_ ref: PartitionRef, at now: ContinuousClock.Instant) -> Bool {
        let p = Int(ref.partition)
        guard let batch = topics[ref.topic].partitions[p].open else { return false }
        topics[ref.topic].partitions[p].open = nil
        batch.closedAt = now
        batch.recordCount = batch.builder!.recordCount
        topics[ref.topic].partitions[p].enqueueClosed(batch)
        openBatches -= 1
        pendingBatches += 1
        if topics[ref.topic].sticky == ref.partition {
            topics[ref.topic].sticky = (ref.partition + 1) % topics[ref.topic].handle.partitionCount
        }
        list(ref)
        return requestDrain()
    }

    /// Closes every open batch (flush). Returns true if a drain must be scheduled.
    mutating func closeAll(at now: ContinuousClock.Instant) -> Bool {
        var drain = false
        for t in topics.indices {
            for p in topics[t].partitions.indices where topics[t].partitions[p].open != nil {
                drain = close(PartitionRef(topic: t, partition: Int32(p)), at: now) || drain
            }
        }
        return drain
    }

    mutating func requestDrain() -> Bool {
        if drainScheduled { return false }
        drainScheduled = true
        return true
    }

    // MARK: Planning requests

    /// Takes the batches to send now: one request per topic and leader of sendable
    /// partitions, each up to `payloadBytesMax`, while fewer than `maxInFlight`
    /// requests are out. `route(topic, partition)` names the leader to send to, nil
    /// while there is none to reach (the partition stays listed; `effects.needsRoute`).
    /// Batches past their deadline come back in `effects`.
    mutating func planRequests(
        maxInFlight: Int, payloadBytesMax: Int, now: NIODeadline, route: (String, Int32) -> Int32?, effects: inout Effects
    ) -> [InFlightProduce] {
        var requests: [InFlightProduce] = []
        if epochBumpNeeded { return requests }
        // Partitions that cannot go now: they stay listed and go back at the end.
        var parked: [PartitionRef] = []
        func destination(_ ref: PartitionRef) -> Int32? {
            guard let node = route(topics[ref.topic].handle.name, ref.partition) else {
                effects.needsRoute = true
                return nil
            }
            let q = topics[ref.topic].partitions[Int(ref.partition)]
            // Requests still out to a former leader end first (they may yet be answered there).
            if q.inFlight > 0 && q.inFlightNode != node { return nil }
            return node
        }
        while inFlightRequests < maxInFlight, let first = sendable.popFirst() {
            guard let node = destination(first) else {
                parked.append(first)
                continue
            }
            topics[first.topic].partitions[Int(first.partition)].listed = false
            let request = InFlightProduce(topic: first.topic, name: topics[first.topic].handle.name, node: node)
            var budget = payloadBytesMax
            take(first, into: request, budget: &budget, now: now, effects: &effects)
            // Other partitions of the same topic and leader join the request while it has room.
            var others: [PartitionRef] = []
            var scan = sendable.count
            while scan > 0, budget > 0, request.entries.count < ProducerLimits.partitionsPerRequestMax, let next = sendable.popFirst() {
                scan -= 1
                if next.topic != first.topic || destination(next) != node {
                    others.append(next)
                    continue
                }
                topics[next.topic].partitions[Int(next.partition)].listed = false
                take(next, into: request, budget: &budget, now: now, effects: &effects)
            }
            for ref in others.reversed() { sendable.prepend(ref) }
            if !request.entries.isEmpty {
                inFlightRequests += 1
                requests.append(request)
            }
        }
        for ref in parked { sendable.append(ref) }
        return requests
    }

    /// The partitions with batches waiting to be sent, by topic name.
    var waitingPartitions: [(topic: String, partition: Int32)] {
        sendable.map { (topics[$0.topic].handle.name, $0.partition) }
    }

    /// Moves a partition's sendable batches into `request`, within `budget` bytes.
    private mutating func take(
        _ ref: PartitionRef, into request: InFlightProduce, budget: inout Int, now: NIODeadline, effects: inout Effects
    ) {
        let p = Int(ref.partition)
        var expired: [ProducerBatch] = []
        let batches = topics[ref.topic].partitions[p].take(
            budget: &budget, takeOneAnyway: request.entries.isEmpty, now: now, expired: &expired)
        for batch in expired { expire(batch, effects: &effects) }
        if !batches.isEmpty {
            request.entries.append((ref.partition, batches))
            topics[ref.topic].partitions[p].inFlightNode = request.node
        }
        if topics[ref.topic].partitions[p].isSendable(now: now) {
            topics[ref.topic].partitions[p].listed = true
            sendable.append(ref)
        }
    }

    private mutating func expire(_ batch: ProducerBatch, effects: inout Effects) {
        let error = ProducerError(
            .deliveryTimedOut, "batch of \(batch.recordCount) records not acknowledged within the delivery timeout",
            underlying: batch.lastError ?? connectError)
        sequenceGap(error)
        finish(batch, .failure(error), effects: &effects)
    }

    /// A batch failed for good. An idempotent producer bumps its epoch before sending
    /// more; a transactional one may not commit, and bumps it when it aborts (its
    /// coordinator owns the epoch).
    private mutating func sequenceGap(_ error: Error) {
        if transactional {
            transaction.failed(error)
        } else if identity != nil {
            epochBumpNeeded = true
        }
    }

    /// Takes the new epoch: every partition's sequence starts again at 0.
    mutating func bumped(to identity: ProducerIdentity) {
        self.identity = identity
        for t in topics.indices {
            for p in topics[t].partitions.indices {
                topics[t].partitions[p].resequence(identity: identity)
            }
        }
        epochBumpNeeded = false
        bumpingEpoch = false
    }

    /// Fails every queued batch whose deadline has passed (used while no connection is up).
    mutating func expireOverdue(now: NIODeadline, effects: inout Effects) {
        for t in topics.indices {
            for p in topics[t].partitions.indices {
                while let b = topics[t].partitions[p].retries.first, now >= b.deadline {
                    topics[t].partitions[p].retries.removeFirst()
                    expire(b, effects: &effects)
                }
                while let b = topics[t].partitions[p].ready.first, now >= b.deadline {
                    topics[t].partitions[p].ready.removeFirst()
                    expire(b, effects: &effects)
                }
            }
        }
    }

    // MARK: Outcomes

    /// What became of one partition's batches in a request.
    enum EntryOutcome {
        case delivered(baseOffset: Int64)
        /// The broker had appended these records before (an idempotent retry) and no
        /// longer knows their offsets: delivered, offsets -1 (Kafka's DUPLICATE_SEQUENCE_NUMBER).
        case alreadyAppended
        /// Worth another attempt (broker unavailable, connection lost, overloaded).
        case retriable(Error)
        /// The broker refused an idempotent batch for a gap in the partition's sequence
        /// (an earlier batch failed for good): it did not append it. As Kafka's producer,
        /// bump the epoch and send it again, in order, with the partition's sequence from 0.
        case outOfSequence(Error)
        case failed(Error)
    }

    /// Applies a request's outcome, partition by partition. Returns true if every
    /// batch was delivered (the payload buffer may then be reused).
    mutating func complete(
        _ request: InFlightProduce, outcomes: [EntryOutcome], now: NIODeadline, backoff: (Int) -> TimeAmount, effects: inout Effects
    ) -> Bool {
        inFlightRequests -= 1
        var allDelivered = true
        for (i, entry) in request.entries.enumerated() {
            let ref = PartitionRef(topic: request.topic, partition: entry.partition)
            let p = Int(entry.partition)
            topics[ref.topic].partitions[p].inFlight -= 1
            switch outcomes[i] {
            case .delivered(let base):
                var next = base
                for batch in entry.batches {
                    finish(batch, .success(next), effects: &effects)
                    next += Int64(batch.recordCount)
                }
                if topics[ref.topic].partitions[p].retries.isEmpty { topics[ref.topic].partitions[p].retrying = false }
            case .alreadyAppended:
                for batch in entry.batches { finish(batch, .success(-1), effects: &effects) }
                if topics[ref.topic].partitions[p].retries.isEmpty { topics[ref.topic].partitions[p].retrying = false }
            case .outOfSequence(let error) where transactional, .failed(let error):
                allDelivered = false
                for batch in entry.batches { finish(batch, .failure(error), effects: &effects) }
                sequenceGap(error)
            case .outOfSequence(let error):
                allDelivered = false
                for batch in entry.batches {
                    batch.lastError = error
                    if now >= batch.deadline {
                        expire(batch, effects: &effects)
                    } else {
                        batch.keepSealedBytes(from: request.payload)
                        topics[ref.topic].partitions[p].requeueForRetry(batch)
                    }
                }
                // Nothing is sent until the new epoch restamped every queued batch (`bumped`).
                if identity != nil { epochBumpNeeded = true }
            case .retriable(let error):
                allDelivered = false
                var attempts = 0
                for batch in entry.batches {
                    batch.lastError = error
                    if now >= batch.deadline {
                        expire(batch, effects: &effects)
                    } else {
                        batch.keepSealedBytes(from: request.payload)
                        topics[ref.topic].partitions[p].requeueForRetry(batch)
                        attempts = max(attempts, batch.attempts)
                    }
                }
                if attempts > 0 {
                    let notBefore = now + backoff(attempts)
                    topics[ref.topic].partitions[p].retryNotBefore = notBefore
                    effects.retryTimers.append((ref, notBefore))
                }
            }
            list(ref)
        }
        if !sendable.isEmpty { effects.drain = requestDrain() || effects.drain }
        return allDelivered
    }

    /// Records a batch's outcome and releases its memory; the batch stays pending
    /// until `reported` (after its records' callbacks ran).
    private mutating func finish(_ batch: ProducerBatch, _ outcome: Result<Int64, Error>, effects: inout Effects) {
        bufferedBytes -= batch.reservedBytes
        batch.reservedBytes = 0
        effects.finished.append((batch, outcome))
        wakeWaiters(&effects)
    }

    /// `count` finished batches have been reported.
    mutating func reported(_ count: Int, effects: inout Effects) {
        pendingBatches -= count
        assert(pendingBatches >= 0, "more batches reported than were pending")
        wakeWaiters(&effects)
    }

    private mutating func wakeWaiters(_ effects: inout Effects) {
        if !waiters.isEmpty {
            effects.waiters += waiters
            waiters.removeAll()
        }
    }
}

import NIOCore
import SpoolProtocol
import SpoolRecords

/// The producer's sending side, on its event loop: seals closed batches into
/// Produce requests (compression happens here, off the caller's thread), writes
/// them, applies the replies, retries, reconnects.
extension SpoolProducer {
    /// Most payload buffers kept for reuse.
    static let sparePayloadsMax = 16
    /// Most batch builders kept for reuse.
    static let spareBuildersMax = 32

    func scheduleDrain() {
        eventLoop.execute { self.drain() }
    }

    /// Sends what may be sent now, each partition's batches to its leader. Runs on the
    /// event loop, after a drain was requested. Partitions whose leader is unknown or
    /// unreachable wait while `startReconnecting` refreshes the metadata and reconnects.
    func drain() {
        eventLoop.preconditionInEventLoop()
        var effects = ProducerState.Effects()
        var bump: ProducerIdentity?
        var links: [Int32: SpoolConnection] = [:]
        let router = self.router
        let (requests, reconnect, identity) = state.withLockedValue {
            s -> ([InFlightProduce], Bool, ProducerIdentity?) in
            s.drainScheduled = false
            let requests = s.planRequests(
                maxInFlight: s.maxInFlightRequests, payloadBytesMax: s.requestPayloadBytesMax, now: .now(),
                route: { topic, partition in
                    guard let (node, connection) = router.leader(of: TopicPartition(topic, partition)), connection.isConnected else { return nil }
                    links[node] = connection
                    return node
                }, effects: &effects)
            var start = false
            if effects.needsRoute && !s.reconnecting && !s.closed {
                s.reconnecting = true
                start = true
            }
            if s.epochBumpNeeded && !s.bumpingEpoch && s.inFlightRequests == 0 {
                s.bumpingEpoch = true
                bump = s.identity
            }
            return (requests, start, s.identity)
        }
        run(effects)
        if let bump { bumpEpoch(from: bump) }
        if reconnect { startReconnecting() }
        for request in requests {
            guard let connection = links[request.node] else {
                preconditionFailure("a planned request goes to a routed broker")
            }
            send(request, on: connection, identity: identity)
        }
    }

    /// Seals the request's batches into one payload and writes the request.
    private func send(_ request: InFlightProduce, on connection: SpoolConnection, identity: ProducerIdentity?) {
        let capacity = request.payloadBytesMax
        var payload = state.withLockedValue { s in s.sparePayloads.popLast() } ?? ByteBufferAllocator().buffer(capacity: capacity)
        payload.reserveCapacity(minimumWritableBytes: capacity)
        var message = Spool_V1_ProduceRequest()
        message.topic = request.name
        message.acks = config.acks.wire
        message.timeoutMs = UInt32(clamping: config.deliveryTimeoutMillis)
        var builders: [RecordBatchBuilder] = []
        do {
            for entry in request.entries {
                let start = payload.writerIndex
                for batch in entry.batches {
                    if var builder = try batch.write(into: &payload, identity: identity) {
                        builder.reset()
                        builders.append(builder)
                    }
                }
                var p = Spool_V1_ProducePartition()
                p.partition = entry.partition
                p.bytes = UInt32(payload.writerIndex - start)
                message.partitions.append(p)
            }
        } catch {
            request.payload = payload
            finish(request, outcome: .failed(error))
            return
        }
        request.payload = payload
        if !builders.isEmpty {
            state.withLockedValue { s in
                for builder in builders where s.spareBuilders.count < Self.spareBuildersMax { s.spareBuilders.append(builder) }
            }
        }
        // The call's deadline is the earliest delivery deadline of its batches: a request
        // without an answer by then fails them (the transport sweeps call deadlines).
        let left = request.deadline.uptimeNanoseconds &- NIODeadline.now().uptimeNanoseconds
        let leftMillis = Int(clamping: max(1, Int64(bitPattern: UInt64(left)) / 1_000_000))
        let pending: SpoolConnection.PendingReply
        do {
            pending = try connection.startCall(.produce, message, payload: payload, timeoutMillis: leftMillis)
        } catch let error as SpoolClientError where error.code == .tooManyCallsInFlight {
            // Refused before sending: the broker's limit of calls in flight is reached.
            finish(request, outcome: .retriable(error))
            return
        } catch {
            finish(request, outcome: Self.classify(error, wholeCall: true))
            return
        }
        Task {
            let reply: Result<SpoolConnection.Reply, Error>
            do { reply = .success(try await pending.reply) } catch { reply = .failure(error) }
            complete(request, reply)
        }
    }

    /// After a gap in a partition's sequence (an idempotent batch failed for good),
    /// asks for the next epoch of the producer id, then sends again with every
    /// partition's sequence starting at 0 (what the broker expects of a new epoch).
    private func bumpEpoch(from identity: ProducerIdentity) {
        Task {
            var attempts = 0
            while true {
                do {
                    var request = Spool_V1_InitProducerIdRequest()
                    request.producerID = identity.producerId
                    request.producerEpoch = Int32(identity.epoch)
                    let response: Spool_V1_InitProducerIdResponse = try await connection.call(.initProducerId, request)
                    let next = ProducerIdentity(producerId: response.producerID, epoch: Int16(clamping: response.producerEpoch))
                    let drain = state.withLockedValue { s -> Bool in
                        s.bumped(to: next)
                        return s.requestDrain()
                    }
                    if drain { scheduleDrain() }
                    return
                } catch {
                    attempts += 1
                    if state.withLockedValue({ $0.closed }) { return }
                    try? await Task.sleep(nanoseconds: UInt64(backoff(attempts: attempts).nanoseconds))
                }
            }
        }
    }

    /// Turns a reply into per-partition outcomes.
    private func complete(_ request: InFlightProduce, _ reply: Result<SpoolConnection.Reply, Error>) {
        switch reply {
        case .failure(let error):
            // The leader's connection broke (or timed out): leadership may have moved.
            if case .retriable = Self.classify(error, wholeCall: true) { router.requestRefresh() }
            finish(request, outcome: Self.classify(error, wholeCall: true))
        case .success(let reply):
            let response: Spool_V1_ProduceResponse
            do {
                response = try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: reply.message)
            } catch {
                finish(request, outcome: .failed(error))
                return
            }
            guard response.results.count == request.entries.count else {
                finish(request, outcome: .failed(SpoolStatusError(
                    .internal, "produce response has \(response.results.count) results for \(request.entries.count) partitions")))
                return
            }
            let outcomes = zip(request.entries, response.results).map { entry, result -> ProducerState.EntryOutcome in
                guard result.partition == entry.partition else {
                    return .failed(SpoolStatusError(.internal, "produce response answers partition \(result.partition) for \(entry.partition)"))
                }
                guard result.code == .ok else {
                    if result.txnError != .none { return Self.transactionOutcome(result) }
                    if result.code == .notLeaderOrFollower { router.requestRefresh() }
                    return Self.classify(SpoolStatusError(result.code, result.message), wholeCall: false)
                }
                return .delivered(baseOffset: result.baseOffset)
            }
            finish(request, outcomes: outcomes)
        }
    }

    private func finish(_ request: InFlightProduce, outcome: ProducerState.EntryOutcome) {
        finish(request, outcomes: Array(repeating: outcome, count: request.entries.count))
    }

    /// Applies the outcomes once (reply or deadline, whichever came first) and runs the effects.
    private func finish(_ request: InFlightProduce, outcomes: [ProducerState.EntryOutcome]) {
        var effects = ProducerState.Effects()
        let backoff = { (attempts: Int) in self.backoff(attempts: attempts) }
        state.withLockedValue { s in
            guard !request.finished else { return }
            request.finished = true
            let delivered = s.complete(request, outcomes: outcomes, now: .now(), backoff: backoff, effects: &effects)
            var payload = request.payload
            request.payload = ByteBuffer()
            if delivered && s.sparePayloads.count < Self.sparePayloadsMax {
                payload.clear()
                s.sparePayloads.append(payload)
            }
        }
        run(effects)
    }

    /// Retriable: the broker is unavailable, short of a resource (RESOURCE_EXHAUSTED:
    /// too many calls in flight, no descriptor for the partition), or the connection is
    /// gone. TOO_LARGE (a batch over the topic's limit) never fits: failed. For one
    /// partition, ABORTED is an idempotent sequence gap (resent under a new epoch) and
    /// ALREADY_EXISTS a retry of records appended before (delivered).
    /// A call past its deadline is past its batches' delivery deadline.
    static func classify(_ error: Error, wholeCall: Bool) -> ProducerState.EntryOutcome {
        switch error {
        case let status as SpoolStatusError:
            switch status.code {
            case .unavailable, .resourceExhausted, .notLeaderOrFollower: return .retriable(error)
            case .aborted where !wholeCall: return .outOfSequence(error)
            case .alreadyExists where !wholeCall: return .alreadyAppended
            default: return .failed(error)
            }
        case let client as SpoolClientError:
            switch client.code {
            case .deadlineExceeded:
                return .failed(ProducerError(.deliveryTimedOut, "no answer to a Produce request within the delivery timeout", underlying: error))
            case .connectionLost, .connectionRefused, .connectTimeout, .handshakeTimeout, .tooManyCallsInFlight: return .retriable(error)
            default: return .failed(error)
            }
        case is ChannelError, is IOError:
            return .retriable(error)
        default:
            return .failed(error)
        }
    }

    /// Pause before attempt `attempts + 1`: exponential from `retryBackoffMillis` to
    /// `retryBackoffMaxMillis`, with ±20% jitter so that producers do not retry in step.
    func backoff(attempts: Int) -> TimeAmount {
        let base = Double(config.retryBackoffMillis) * Double(1 << min(max(attempts - 1, 0), 20))
        let capped = min(base, Double(config.retryBackoffMaxMillis))
        return .microseconds(Int64(capped * Double.random(in: 0.8...1.2) * 1000))
    }

    /// Runs what the state decided: outcomes to report, waiters to wake, timers, a drain.
    /// Event-loop work is scheduled before user code runs: a caller woken by its
    /// outcome may shut the event loop down.
    func run(_ effects: ProducerState.Effects) {
        if effects.drain { scheduleDrain() }
        for (ref, notBefore) in effects.retryTimers {
            eventLoop.scheduleTask(deadline: notBefore) { [self] in
                let drain = state.withLockedValue { s -> Bool in
                    s.list(ref)
                    return s.requestDrain()
                }
                if drain { self.drain() }
            }
        }
        for (batch, outcome) in effects.finished { report(batch, outcome) }
        var waiters = effects.waiters
        if !effects.finished.isEmpty {
            var after = ProducerState.Effects()
            state.withLockedValue { $0.reported(effects.finished.count, effects: &after) }
            waiters += after.waiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Tells the batch's records and the delivery handler how the batch ended.
    private func report(_ batch: ProducerBatch, _ outcome: Result<Int64, Error>) {
        let topic = batch.topic.name
        switch outcome {
        case .success(let base):
            for (index, completion) in batch.completions {
                completion.complete(.success(RecordMetadata(topic: topic, partition: batch.partition, offset: base < 0 ? -1 : base + Int64(index))))
            }
        case .failure(let error):
            for (_, completion) in batch.completions { completion.complete(.failure(error)) }
        }
        batch.completions = []
        if let onDelivery {
            let base: Int64
            let error: Error?
            switch outcome {
            case .success(let b): (base, error) = (b, nil)
            case .failure(let e): (base, error) = (-1, e)
            }
            onDelivery(DeliveryReport(
                topic: topic, partition: batch.partition, baseOffset: base, recordCount: batch.recordCount, error: error,
                openedAt: batch.openedAt, closedAt: batch.closedAt, attempts: batch.attempts))
        }
    }

    // MARK: Reconnecting

    /// Finds a leader for every partition that waits for one (metadata refreshed through
    /// the router, which paces its calls), brings their connections back (each reconnects
    /// itself; the producer adds its own backoff between rounds), and fails batches whose
    /// deadline passes meanwhile. Ends once every waiting partition can be sent to.
    /// `close()` cancels it and waits for it.
    func startReconnecting() {
        let task = Task {
            var attempts = 0
            while true {
                guard stillNeedsConnection() else { return }
                let waiting = state.withLockedValue { $0.waitingPartitions }.map { TopicPartition($0.topic, $0.partition) }
                if attempts > 0 || waiting.contains(where: { router.leader(of: $0) == nil }) {
                    do {
                        try await Task.sleep(nanoseconds: UInt64(backoff(attempts: max(1, attempts)).nanoseconds))
                    } catch {
                        state.withLockedValue { $0.reconnecting = false }
                        return
                    }
                }
                attempts += 1
                guard stillNeedsConnection() else { return }
                if waiting.contains(where: { router.leader(of: $0) == nil }) {
                    do {
                        try await router.refresh(topics: Array(Set(waiting.map(\.topic))))
                    } catch {
                        state.withLockedValue { $0.connectError = error }
                    }
                }
                // Reconnect each leader once per round.
                var seen = Set<ObjectIdentifier>()
                var reachable = true
                for tp in waiting {
                    guard let (_, connection) = router.leader(of: tp) else {
                        reachable = false
                        continue
                    }
                    guard !connection.isConnected, seen.insert(ObjectIdentifier(connection)).inserted else { continue }
                    do {
                        try await connection.reconnect(timeoutMillis: config.retryBackoffMaxMillis)
                    } catch {
                        reachable = false
                        state.withLockedValue { $0.connectError = error }
                        router.requestRefresh() // the broker is gone: maybe another leads now
                        if let client = error as? SpoolClientError, client.code == .closed {
                            state.withLockedValue { $0.reconnecting = false }
                            return // closed by the application: the batches expire
                        }
                    }
                }
                let drain = state.withLockedValue { s -> Bool in
                    if reachable {
                        s.reconnecting = false
                        s.connectError = nil
                        s.maxInFlightRequests = Self.maxInFlight(config, connection)
                        s.requestPayloadBytesMax = ProducerLimits(
                            config: config, maxFrameBytes: Int(connection.handshake.maxFrameBytes), maxMessageBytes: .max
                        ).requestPayloadBytesMax
                    }
                    // Partitions waiting out a backoff are relisted by their timers; the rest now.
                    return !s.closed && s.requestDrain()
                }
                if drain { scheduleDrain() }
                if reachable { return }
            }
        }
        state.withLockedValue { $0.reconnectTask = task }
    }

    /// Expires overdue batches; false (and reconnecting ends) when nothing needs a
    /// connection any more, or the producer is closed or cancelled.
    private func stillNeedsConnection() -> Bool {
        var effects = ProducerState.Effects()
        let needed = state.withLockedValue { s -> Bool in
            s.expireOverdue(now: .now(), effects: &effects)
            if s.isIdle || s.closed || Task.isCancelled {
                s.reconnecting = false
                return false
            }
            return true
        }
        run(effects)
        return needed
    }
}

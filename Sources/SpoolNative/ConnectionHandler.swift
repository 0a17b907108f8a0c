import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import SpoolBroker
import SpoolProtocol
import SpoolRecords
import SpoolSecurity
import SpoolTransport
import SwiftProtobuf

/// Serves one native-protocol connection: decodes calls, runs them against the broker
/// core, writes answers (batches with `sendfile` via `FileRegion`), and drives the
/// connection's Subscribe streams under their credit windows.
///
/// Runs on the connection's event loop. Calls are independent: each is answered
/// when it completes, in any order.
///
/// Backpressure (the connection's `ConnectionBudget`): a call counts as in flight until
/// the last byte of its answer is written; each span sent holds a duplicated descriptor
/// until then, within the connection's descriptor budget (a response that finds none
/// waits for an earlier one to be written). The `TransportHandler` before it writes the
/// answers, keeps the outbound ledger, stops reading requests while the socket is
/// unwritable or its queued bytes are over budget (and while this handler holds
/// `ReadHold.answersWaiting`: responses wait for descriptors), and drops a sender whose
/// frame does not complete in time.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Transmission

    /// Most times a Subscribe retries opening its segment after a failure before it ends.
    static let subscribeOpenRetriesMax = 8
    /// First pause before such a retry (doubled each time, up to `subscribeRetryMillisMax`).
    static let subscribeRetryMillisMin: Int64 = 10
    static let subscribeRetryMillisMax: Int64 = 1000

    let broker: Broker
    let budget: ConnectionBudget
    private var context: ChannelHandlerContext?
    /// Calls open on this connection (unary ones until answered, streams until ended).
    private var inFlight: Set<UInt32> = []
    /// Calls answered whose answer is not yet written out: still in flight for the limit.
    private var answered: Set<UInt32> = []
    /// Fetch answers waiting for a span descriptor of this connection, oldest first
    /// (while there are any, the transport holds `ReadHold.answersWaiting`).
    private var deferredFetches = CircularBuffer<(id: UInt32, planned: [FetchedPartition])>() {
        didSet {
            if oldValue.isEmpty != deferredFetches.isEmpty { holdReads(!deferredFetches.isEmpty) }
        }
    }
    private var subscriptions: [UInt32: NativeSubscription] = [:]
    /// Fetches waiting for data (long polls), by stream id.
    private var pendingFetches: [UInt32: PendingFetch] = [:]
    private var needsFlush = false
    private var calls: NativeCallMetrics
    /// Handshake, topics, offsets, groups, producer ids: no connection state needed.
    private let control: NativeControlCalls
    private var closing = false
    /// Who this connection is, for the authorizer (`NativeAuthorization`): `User:ANONYMOUS`
    /// until Authenticate (SCRAM) or a verified client certificate proves another principal.
    var principal = AccessIdentity.anonymousPrincipal
    /// The SCRAM exchange and the gate before authentication (`NativeAuthentication`).
    private var authentication: NativeAuthentication
    /// Largest answer a fetch or a Subscribe event may carry: the frame limit, and over TLS
    /// also the outbound budget, since spans are then copied into buffers (TransportHandler).
    let answerBytesMax: Int
    /// "native" or "native+tls", for the authentication log.
    private let listenerName: String
    /// The broker is shutting down: finish the calls in flight, take no new ones, then GOAWAY.
    private var draining = false

    /// Sent through the pipeline by `SpoolServer.shutdown()`.
    struct DrainEvent {}

    init(broker: Broker, budget: ConnectionBudget, security: NativeSecurityConfig = NativeSecurityConfig()) {
        self.broker = broker
        self.budget = budget
        authentication = NativeAuthentication(config: security)
        // Over TLS never below twice the room of a response message, or a Subscribe event
        // could carry no bytes at all (max.outbound.bytes.per.connection may be 64 KiB).
        answerBytesMax = security.tls == nil
            ? broker.config.maxFrameBytes
            : min(broker.config.maxFrameBytes, max(broker.budgets.config.outboundBytesPerConnectionMax, 2 * Self.responseMessageBytesMax))
        listenerName = security.tls == nil ? "native" : "native+tls"
        calls = NativeCallMetrics(events: broker.events)
        control = NativeControlCalls(broker: broker)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        calls.connectionOpened(client: context.channel.remoteAddress.map { "\($0)" } ?? "?")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Nothing is written from here on (cancelled fetches complete into `finish`).
        self.context = nil
        for sub in subscriptions.values { stopWaiting(sub) }
        subscriptions.removeAll()
        deferredFetches.removeAll()
        for fetch in pendingFetches.values { fetch.cancel() }
        pendingFetches.removeAll()
        calls.connectionClosed()
    }

    private var bound: NIOLoopBound<ConnectionHandler> {
        NIOLoopBound(self, eventLoop: context!.eventLoop)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.type {
        case .request:
            guard !inFlight.contains(frame.streamID) && !answered.contains(frame.streamID) else {
                return goAway(SpoolStatusError(.invalidArgument, "stream id \(frame.streamID) is already in use"))
            }
            guard inFlight.count + answered.count < broker.config.maxInFlightPerConnection else {
                broker.events.budgetHit("max.in.flight.per.connection", client: "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", detail: "\(inFlight.count + answered.count) calls in flight")
                return writeStatus(frame.streamID, SpoolStatusError(.resourceExhausted, "more than \(broker.config.maxInFlightPerConnection) calls in flight on this connection"))
            }
            guard !draining else {
                return writeStatus(frame.streamID, SpoolStatusError(.unavailable, "the broker is shutting down"))
            }
            guard let method = SpoolMethod(rawValue: frame.method) else {
                return writeStatus(frame.streamID, SpoolStatusError(.unimplemented, "unknown method id \(frame.method)"))
            }
            inFlight.insert(frame.streamID)
            calls.started(frame.streamID, method)
            do {
                try dispatch(method, frame)
            } catch {
                finish(frame.streamID, error)
            }
        case .credit:
            guard let sub = subscriptions[frame.streamID] else { return } // a stream that already ended
            do {
                let credit = try ProtoCodec.decode(Spool_V1_Credit.self, from: frame.message)
                sub.credit = min(sub.credit + Int(credit.bytes), Int(Int32.max))
                pump(sub)
            } catch {
                endSubscription(sub, error)
            }
        case .cancel:
            if let sub = subscriptions.removeValue(forKey: frame.streamID) { stopWaiting(sub) }
            pendingFetches.removeValue(forKey: frame.streamID)?.cancel()
            // A planned answer still waiting for a descriptor belongs to the cancelled call.
            if deferredFetches.contains(where: { $0.id == frame.streamID }) {
                deferredFetches.removeAll { $0.id == frame.streamID }
            }
            if inFlight.contains(frame.streamID) {
                finish(frame.streamID, SpoolStatusError(.cancelled, "cancelled by the client"))
            }
        case .response, .status, .goAway:
            goAway(SpoolStatusError(.invalidArgument, "a client may not send \(frame.type) frames"))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let framing = error as? FramingError {
            goAway(SpoolStatusError(framing.code == .tooLarge ? .tooLarge : .invalidArgument, framing.message))
        } else if let status = error as? SpoolStatusError {
            // The decoder refused a frame (the inbound budget).
            goAway(status)
        } else if error is ByteToMessageDecoderError {
            goAway(SpoolStatusError(.invalidArgument, "\(error)"))
        } else if error is NIOSSLError || error is BoringSSLError {
            // No client certificate where one is required, an untrusted one, or no TLS at all:
            // logged (rate-limited) and counted as a failed authentication, then closed.
            broker.events.authenticationFailed(user: nil, mechanism: "TLS", client: clientAddress, listener: listenerName,
                                               reason: "TLS handshake failed: \(error)")
            closing = true
            context.close(promise: nil)
        } else {
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for sub in Array(subscriptions.values) { pump(sub) }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Backpressure

    /// Asks the transport to hold (or stop holding) reads while answers wait for a descriptor.
    private func holdReads(_ held: Bool) {
        context?.triggerUserOutboundEvent(ReadHold.Change(.answersWaiting, held: held), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            // Mutual TLS: a verified client certificate names the principal (Authenticate overrides it).
            if let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
               let certificate = handler.peerCertificate, let who = TLSSettings.principal(of: certificate) {
                authentication.certificateVerified(who)
                if let proved = authentication.principal { principal = proved.description }
                broker.events.authenticationSucceeded(principal: who.description, mechanism: "TLS", client: clientAddress, listener: listenerName)
            }
            return context.fireUserInboundEventTriggered(event)
        }
        if event is DrainEvent {
            draining = true
            // Streams end now; unary calls in flight are answered, then the connection says goodbye.
            for fetch in pendingFetches.values { fetch.finishNow() }
            for sub in Array(subscriptions.values) {
                endSubscription(sub, SpoolStatusError(.unavailable, "the broker is shutting down"))
            }
            goAwayIfDrained()
            return
        }
        if let transport = event as? TransportEvent {
            switch transport {
            case .frameTimedOut(let bytes, let seconds):
                goAway(SpoolStatusError(.deadlineExceeded, "a frame of \(bytes) bytes was not completed within \(seconds) s"))
            case .writesCompleted(let spansClosed):
                serviceAfterWrites(spansClosed: spansClosed)
            }
            return
        }
        if event is IdleStateHandler.IdleStateEvent, inFlight.isEmpty, answered.isEmpty {
            goAway(SpoolStatusError(.unavailable, "idle for \(broker.config.idleTimeoutSeconds) s"))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Dispatch

    private var clientAddress: String { context?.channel.remoteAddress.map { "\($0)" } ?? "?" }

    private func dispatch(_ method: SpoolMethod, _ frame: Frame) throws {
        let id = frame.streamID
        if method == .authenticate {
            return authenticate(id, try ProtoCodec.decode(Spool_V1_AuthenticateRequest.self, from: frame.message))
        }
        if let refusal = authentication.refusal(method) {
            broker.events.authenticationFailed(user: nil, mechanism: "none", client: clientAddress, listener: listenerName, reason: refusal.message)
            finish(id, refusal)
            return goAway(refusal)
        }
        let clientHost = "/" + (context?.channel.remoteAddress?.ipAddress ?? "")
        try NativeAuthorization.check(
            method, frame, AccessIdentity(principal: principal, host: context?.channel.remoteAddress?.ipAddress ?? ""), broker: broker)
        let local = context?.channel.localAddress.map { "\($0.ipAddress ?? ""):\($0.port ?? 0)" } ?? ""
        if let outcome = try control.handle(method, frame, clientHost: clientHost, localAddress: local) {
            switch outcome {
            case .now(let response): respond(id, response)
            case .later(let body): answer(id, body)
            }
            return
        }
        switch method {
        case .produce:
            try produce(id, try ProtoCodec.decode(Spool_V1_ProduceRequest.self, from: frame.message), payload: frame.payload)
        case .produceRecords:
            try produceRecords(id, try ProtoCodec.decode(Spool_V1_ProduceRecordsRequest.self, from: frame.message))
        case .fetch:
            try fetch(id, try ProtoCodec.decode(Spool_V1_FetchRequest.self, from: frame.message))
        case .subscribe:
            try subscribe(id, try ProtoCodec.decode(Spool_V1_SubscribeRequest.self, from: frame.message))
        default:
            preconditionFailure("\(method) is a control call: NativeControlCalls answers it")
        }
    }

    /// One step of the SCRAM exchange (FRAMING.md, "Authentication"); a refusal ends the
    /// call with its status and the connection with GOAWAY.
    private func authenticate(_ id: UInt32, _ request: Spool_V1_AuthenticateRequest) {
        switch authentication.step(request) {
        case .answer(let response):
            respond(id, response, flushNow: true)
        case .authenticated(let response, let who, let mechanism):
            principal = who.description
            broker.events.authenticationSucceeded(principal: who.description, mechanism: mechanism, client: clientAddress, listener: listenerName)
            respond(id, response, flushNow: true)
        case .refused(let status, let user, let mechanism):
            broker.events.authenticationFailed(user: user, mechanism: mechanism, client: clientAddress, listener: listenerName, reason: status.message)
            finish(id, status)
            goAway(status)
        }
    }

    /// Runs an async core call (admin work runs on the broker's I/O pool) and answers
    /// call `id` on this connection's event loop when it completes.
    private func answer(_ id: UInt32, _ body: @escaping @Sendable () async throws -> any SwiftProtobuf.Message & Sendable) {
        let bound = self.bound
        context!.eventLoop.makeFutureWithTask(body).whenComplete { result in
            switch result {
            case .success(let response): bound.value.respond(id, response, flushNow: true)
            case .failure(let error): bound.value.finish(id, error)
            }
        }
    }

    // MARK: Produce

    private func produce(_ id: UInt32, _ request: Spool_V1_ProduceRequest, payload: ByteBuffer) throws {
        let declared = request.partitions.reduce(0) { $0 + Int($1.bytes) }
        guard declared == payload.readableBytes else {
            throw SpoolStatusError(.invalidArgument, "partitions declare \(declared) payload bytes but the frame carries \(payload.readableBytes)")
        }
        var rest = payload
        let parts = request.partitions.map { p in (partition: p.partition, batches: rest.readSlice(length: Int(p.bytes))!) }
        let acks = NativeMessages.acks(request.acks)
        let appended = broker.produce(topic: request.topic, parts, acks: acks, on: context!.eventLoop)
        if acks == .none {
            // ACKS_NONE: answered at once, before the append; offsets are unknown (-1) and
            // a failed append is not reported (proto/spool.proto).
            var response = Spool_V1_ProduceResponse()
            response.results = request.partitions.map { p in
                var m = Spool_V1_ProducePartitionResult()
                m.partition = p.partition
                m.baseOffset = -1
                m.lastOffset = -1
                m.logStartOffset = -1
                return m
            }
            return respond(id, response)
        }
        let bound = self.bound
        appended.whenSuccess { results in
            var response = Spool_V1_ProduceResponse()
            response.results = results.map { r in
                var m = Spool_V1_ProducePartitionResult()
                m.partition = r.topicPartition.partition
                m.baseOffset = r.baseOffset
                m.lastOffset = r.lastOffset
                m.logStartOffset = r.logStartOffset
                if let error = r.error {
                    let status = StatusMapping.status(for: error)
                    m.code = status.code
                    m.message = status.message
                    if let refusal = error as? TransactionError { m.txnError = NativeTransactionCalls.txnError(refusal.code) }
                }
                return m
            }
            bound.value.respond(id, response, flushNow: true)
        }
    }

    private func produceRecords(_ id: UInt32, _ request: Spool_V1_ProduceRecordsRequest) throws {
        let terms = try broker.looseRecordTerms(topic: request.topic)
        let placed = try LooseRecordPlacement.place(
            request, terms: terms, recordsMax: broker.config.maxRecordsPerRequest,
            roundRobinStart: Int32(truncatingIfNeeded: id), nowMillis: Broker.wallClockMillis())
        guard !placed.isEmpty else { return respond(id, Spool_V1_ProduceRecordsResponse()) }
        let count = placed.count
        let ackNone = request.acks == .none
        let results = NIOLockedValueBox<(remaining: Int, results: [Spool_V1_RecordResult])>((count, Array(repeating: Spool_V1_RecordResult(), count: count)))
        let bound = self.bound
        let eventLoop = context!.eventLoop
        let acksAll = request.acks == .all
        let broker = self.broker
        for (i, record) in placed.enumerated() {
            let tp = TopicPartition(request.topic, record.partition)
            let chosen = record.partition
            broker.produceRecord(
                tp, codec: terms.codec, lingerMillis: terms.lingerMillis,
                key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp, eventLoop: eventLoop
            ) { outcome in
                if ackNone { return }
                var r = Spool_V1_RecordResult()
                r.partition = chosen
                switch outcome {
                case .success(let offset): r.offset = offset
                case .failure(let error):
                    let status = StatusMapping.status(for: error)
                    r.code = status.code
                    r.message = status.message
                    r.offset = -1
                }
                let done = results.withLockedValue { state -> [Spool_V1_RecordResult]? in
                    state.results[i] = r
                    state.remaining -= 1
                    return state.remaining == 0 ? state.results : nil
                }
                guard let done else { return }
                Task {
                    var final = done
                    if acksAll {
                        var ends: [Int32: Int64] = [:]
                        for r in final where r.code == .ok { ends[r.partition] = max(ends[r.partition] ?? 0, r.offset + 1) }
                        for (p, end) in ends {
                            do { try await broker.waitUntilDurable(TopicPartition(request.topic, p), end) } catch {
                                let status = StatusMapping.status(for: error)
                                for j in final.indices where final[j].partition == p {
                                    final[j].code = status.code
                                    final[j].message = status.message
                                }
                            }
                        }
                    }
                    var response = Spool_V1_ProduceRecordsResponse()
                    response.results = final
                    let answer = response
                    eventLoop.execute { bound.value.respond(id, answer, flushNow: true) }
                }
            }
        }
        if ackNone {
            // ACKS_NONE: answered at once with the partitions chosen; offsets unknown (-1).
            var response = Spool_V1_ProduceRecordsResponse()
            response.results = placed.map { record in
                var r = Spool_V1_RecordResult()
                r.partition = record.partition
                r.offset = -1
                return r
            }
            respond(id, response)
        }
    }

    // MARK: Fetch

    private func fetch(_ id: UInt32, _ request: Spool_V1_FetchRequest) throws {
        let spec = try NativeFetchRequest.spec(request, maxFrameBytes: answerBytesMax)
        let pending = broker.fetch(spec, on: context!.eventLoop)
        pendingFetches[id] = pending
        let bound = self.bound
        pending.future.whenComplete { result in
            let handler = bound.value
            handler.pendingFetches.removeValue(forKey: id)
            switch result {
            case .success(let planned): handler.answerFetch(id, planned)
            case .failure(let error): handler.finish(id, error)
            }
            handler.flushIfNeeded()
            handler.goAwayIfDrained()
        }
    }

    /// Answers a fetch now, or queues it behind the answers waiting for a descriptor.
    private func answerFetch(_ id: UInt32, _ planned: [FetchedPartition]) {
        if deferredFetches.isEmpty && writeFetchResponse(id, planned) { return }
        broker.budgets.count(.responsesDeferred)
        deferredFetches.append((id, planned))
    }

    /// Writes the fetch answers that waited for descriptors, oldest first, while descriptors last.
    private func serveDeferredFetches() {
        while let next = deferredFetches.first {
            guard writeFetchResponse(next.id, next.planned) else { break }
            deferredFetches.removeFirst()
        }
    }

    /// Writes a fetch answer, its spans sent from duplicated descriptors. Returns false
    /// (writing nothing) when not one descriptor could be had: the answer must wait for an
    /// earlier one of this connection to be written. Spans after the first that find no
    /// descriptor are left out (the partition reports no data; the client fetches it again).
    private func writeFetchResponse(_ id: UInt32, _ planned: [FetchedPartition]) -> Bool {
        guard inFlight.contains(id) else { return true } // cancelled meanwhile
        var results: [Spool_V1_FetchPartitionResult] = []
        var spans: [FetchedSpan] = []
        // Open the descriptors first: a segment deleted meanwhile must not leave a half-written frame.
        for p in planned {
            var result = Spool_V1_FetchPartitionResult()
            result.topic = p.topicPartition.topic
            result.partition = p.topicPartition.partition
            result.highWatermark = p.highWatermark
            result.logStartOffset = p.logStartOffset
            result.lastStableOffset = p.lastStableOffset
            result.abortedTransactions = p.abortedTransactions.map {
                var a = Spool_V1_AbortedTransaction()
                a.producerID = $0.producerId
                a.firstOffset = $0.firstOffset
                return a
            }
            var failure: Error? = p.error
            switch broker.openSpan(p, budget: budget) {
            case .opened(let span):
                spans.append(span)
                result.bytes = UInt32(span.byteCount)
            case .noDescriptor where spans.isEmpty:
                return false
            case .failed(let error):
                failure = error
            case .nothing, .noDescriptor:
                break
            }
            if let failure {
                let status = StatusMapping.status(for: failure)
                result.code = status.code
                result.message = String(status.message.utf8.prefix(NativeFetchRequest.errorMessageBytesMax)) ?? status.code.name
            }
            results.append(result)
        }
        var response = Spool_V1_FetchResponse()
        response.partitions = results
        writeMessage(.response, flags: Frame.endStreamFlag, streamID: id, response, spans: spans, ends: id)
        calls.ended(id)
        return true
    }

    // MARK: Subscribe

    private func subscribe(_ id: UInt32, _ request: Spool_V1_SubscribeRequest) throws {
        let tp = TopicPartition(request.topic, request.partition)
        let reader = try broker.reader(tp)
        let offsets = reader.offsets
        guard request.offset >= offsets.logStartOffset && request.offset <= offsets.highWatermark else {
            throw BrokerError(.offsetOutOfRange, "offset \(request.offset) is outside \(tp), which holds \(offsets.logStartOffset)–\(offsets.highWatermark - 1)")
        }
        let sub = NativeSubscription(
            streamID: id, reader: reader, nextOffset: request.offset,
            credit: Int(request.initialCreditBytes == 0 ? 1 << 20 : request.initialCreditBytes),
            maxBytesPerEvent: min(Int(request.maxBytesPerEvent == 0 ? 1 << 20 : request.maxBytesPerEvent), answerBytesMax - Self.responseMessageBytesMax))
        subscriptions[id] = sub
        pump(sub)
    }

    /// Ends a subscription for good: no more events, no wake-ups, a final STATUS.
    private func endSubscription(_ sub: NativeSubscription, _ error: Error) {
        guard subscriptions[sub.streamID] === sub else { return }
        subscriptions.removeValue(forKey: sub.streamID)
        stopWaiting(sub)
        finish(sub.streamID, error)
    }

    /// Cancels whatever a subscription is waiting on (an append, a retry).
    private func stopWaiting(_ sub: NativeSubscription) {
        if let token = sub.waitToken { broker.cancelWait(sub.tp, token) }
        sub.waitToken = nil
        sub.retry?.cancel()
        sub.retry = nil
    }

    /// Sends events while the subscription has credit, the socket is writable and a span
    /// descriptor is free; when it has caught up, waits for the next append.
    private func pump(_ sub: NativeSubscription) {
        guard let context, subscriptions[sub.streamID] === sub, sub.waitToken == nil, sub.retry == nil else { return }
        while sub.credit > 0 && context.channel.isWritable {
            let read: FetchedPartition
            do {
                read = try sub.reader.read(from: sub.nextOffset, maxBytes: min(sub.credit, sub.maxBytesPerEvent))
            } catch {
                return endSubscription(sub, error)
            }
            guard read.spanBytes > 0 else {
                let bound = self.bound
                let eventLoop = context.eventLoop
                let streamID = sub.streamID
                let identity = ObjectIdentifier(sub)
                sub.waitToken = broker.waitForAppend(sub.tp) {
                    eventLoop.execute {
                        let handler = bound.value
                        // The same subscription, not a later one that reuses the stream id.
                        guard let sub = handler.subscriptions[streamID], ObjectIdentifier(sub) == identity else { return }
                        sub.waitToken = nil
                        handler.pump(sub)
                    }
                }
                // An append may have landed between the read and the registration.
                if sub.reader.offsets.highWatermark > sub.nextOffset, let token = sub.waitToken {
                    broker.cancelWait(sub.tp, token)
                    sub.waitToken = nil
                    continue
                }
                break
            }
            // A batch is never split: one larger than a frame can carry ends the stream (TOO_LARGE).
            if read.spanBytes > answerBytesMax - Self.responseMessageBytesMax {
                return endSubscription(sub, BrokerError(.recordTooLarge,
                    "the batch at offset \(sub.nextOffset) of \(sub.tp) is \(read.spanBytes) bytes, more than one answer can carry (\(answerBytesMax) bytes: max.frame.bytes, and over TLS max.outbound.bytes.per.connection)"))
            }
            let span: FetchedSpan
            switch broker.openSpan(read, budget: budget) {
            case .opened(let opened):
                span = opened
                sub.openFailures = 0
            case .failed(let error):
                return retryLater(sub, error)
            case .noDescriptor, .nothing:
                // Out of descriptors: the events already queued release theirs when written.
                flushIfNeeded()
                return
            }
            var event = Spool_V1_SubscribeEvent()
            event.partition = sub.tp.partition
            event.highWatermark = read.highWatermark
            event.logStartOffset = read.logStartOffset
            event.bytes = UInt32(span.byteCount)
            writeMessage(.response, flags: 0, streamID: sub.streamID, event, spans: [span], ends: nil)
            sub.credit -= span.byteCount
            sub.nextOffset = span.nextOffset
        }
        flushIfNeeded()
    }

    /// The segment could not be opened (no descriptor left, or retention deleted it):
    /// try again after a pause that doubles each time; after `subscribeOpenRetriesMax`
    /// failures in a row, end the stream with the error.
    private func retryLater(_ sub: NativeSubscription, _ error: Error) {
        sub.openFailures += 1
        guard sub.openFailures <= Self.subscribeOpenRetriesMax, let context else { return endSubscription(sub, error) }
        let millis = min(Self.subscribeRetryMillisMax, Self.subscribeRetryMillisMin << Int64(sub.openFailures - 1))
        let bound = self.bound
        let streamID = sub.streamID
        let identity = ObjectIdentifier(sub)
        sub.retry = context.eventLoop.scheduleTask(in: .milliseconds(millis)) {
            let handler = bound.value
            guard let sub = handler.subscriptions[streamID], ObjectIdentifier(sub) == identity else { return }
            sub.retry = nil
            handler.pump(sub)
        }
    }

    // MARK: Writing

    /// Room left in a frame for a response message beside its payload.
    static let responseMessageBytesMax = 64 * 1024

    private func respond<M: SwiftProtobuf.Message>(_ id: UInt32, _ message: M, flushNow: Bool = false) {
        guard inFlight.contains(id) else { return }
        writeMessage(.response, flags: Frame.endStreamFlag, streamID: id, message, spans: [], ends: id)
        calls.ended(id)
        if flushNow { flushIfNeeded() }
    }

    /// While draining, says goodbye once the last call in flight was answered and written.
    private func goAwayIfDrained() {
        if draining && inFlight.isEmpty && answered.isEmpty {
            goAway(SpoolStatusError(.unavailable, "the broker is shutting down"))
        }
    }

    /// Ends call `id` with a STATUS for `error` (nothing if the call already ended).
    private func finish(_ id: UInt32, _ error: Error) {
        guard inFlight.contains(id) else { return }
        let status = StatusMapping.status(for: error)
        writeMessage(.status, flags: Frame.endStreamFlag, streamID: id, status.status, spans: [], ends: id)
        calls.ended(id, error: status.code)
        flushIfNeeded()
    }

    /// A STATUS for a REQUEST that was refused before it became a call.
    private func writeStatus(_ id: UInt32, _ status: SpoolStatusError) {
        writeMessage(.status, flags: Frame.endStreamFlag, streamID: id, status.status, spans: [], ends: nil)
    }

    /// Writes one frame: header and message, then the payload's spans. The spans (each
    /// holding a span descriptor of the budget) are closed, the queued bytes counted off
    /// and call `ends` (whose last frame this is) leaves the in-flight set only once the
    /// last byte is written, or the write failed.
    private func writeMessage<M: SwiftProtobuf.Message>(
        _ type: FrameType, flags: UInt8, streamID: UInt32, _ message: M, spans: [FetchedSpan], ends call: UInt32?
    ) {
        guard let context, !closing else {
            for span in spans { span.close() }
            if let call { inFlight.remove(call) }
            return
        }
        let bytes: [UInt8]
        do {
            bytes = try message.serializedBytes()
        } catch {
            // Never send an empty message in its place: the client could not tell.
            for span in spans { span.close() }
            return goAway(SpoolStatusError(.internal, "could not encode a \(M.protoMessageName): \(error)"))
        }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerBytes + bytes.count)
        Frame.writeHeader(type: type, flags: flags, streamID: streamID, messageBytes: bytes.count,
                          payloadBytes: spans.reduce(0) { $0 + $1.byteCount }, to: &buffer)
        buffer.writeBytes(bytes)
        if let call {
            inFlight.remove(call)
            answered.insert(call)
        }
        // The transport counts the frame in the outbound ledger and closes the spans once
        // the last byte is written (or the write failed).
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(Transmission(buffer, trailing: spans)), promise: written)
        needsFlush = true
        if let call {
            let bound = self.bound
            written.futureResult.whenComplete { _ in bound.value.answered.remove(call) }
        }
    }

    /// Writes completed (`TransportEvent.writesCompleted`, once per burst, after the
    /// current work): what the freed room allows — deferred answers, streams — runs now.
    private func serviceAfterWrites(spansClosed: Bool) {
        guard context != nil, !closing else { return }
        if spansClosed {
            serveDeferredFetches()
            for sub in Array(subscriptions.values) { pump(sub) }
        }
        flushIfNeeded()
        goAwayIfDrained()
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Sends GOAWAY with `status` and closes the connection.
    private func goAway(_ status: SpoolStatusError) {
        guard let context, !closing else { return }
        closing = true
        let channel = context.channel
        guard let frame = try? NativeFrames.goAway(status, allocator: channel.allocator) else {
            return channel.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(Transmission(frame))).whenComplete { _ in channel.close(promise: nil) }
    }
}

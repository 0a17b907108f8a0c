import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol
import SpoolRecords
import SpoolStorage
import SwiftProtobuf

/// Serves one client connection: decodes calls, runs them against the broker,
/// writes answers (batches with `sendfile` via `FileRegion`), and drives the
/// connection's Subscribe streams under their credit windows.
///
/// Runs on the connection's event loop. Calls are independent: each is answered
/// when it completes, in any order.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = IOData

    /// A live Subscribe stream.
    final class Subscription {
        let streamID: UInt32
        let tp: TopicPartition
        let log: PartitionLog
        var nextOffset: Int64
        var credit: Int
        let maxBytesPerEvent: Int
        var waitToken: UInt64?

        init(streamID: UInt32, tp: TopicPartition, log: PartitionLog, nextOffset: Int64, credit: Int, maxBytesPerEvent: Int) {
            self.streamID = streamID
            self.tp = tp
            self.log = log
            self.nextOffset = nextOffset
            self.credit = credit
            self.maxBytesPerEvent = maxBytesPerEvent
        }
    }

    let broker: Broker
    private var context: ChannelHandlerContext?
    /// Calls open on this connection (unary ones until answered, streams until ended).
    private var inFlight: Set<UInt32> = []
    private var subscriptions: [UInt32: Subscription] = [:]
    private var needsFlush = false
    private var closing = false
    /// The broker is shutting down: finish the calls in flight, take no new ones, then GOAWAY.
    private var draining = false

    /// Sent through the pipeline by `SpoolServer.shutdown()`.
    struct DrainEvent {}

    init(broker: Broker) {
        self.broker = broker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        for sub in subscriptions.values { if let token = sub.waitToken { broker.notifier.cancel(sub.tp, token) } }
        subscriptions.removeAll()
        self.context = nil
    }

    private var bound: NIOLoopBound<ConnectionHandler> {
        NIOLoopBound(self, eventLoop: context!.eventLoop)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.type {
        case .request:
            guard !inFlight.contains(frame.streamID) else {
                return goAway(SpoolStatusError(.invalidArgument, "stream id \(frame.streamID) is already in use"))
            }
            guard inFlight.count < broker.config.maxInFlightPerConnection else {
                return writeStatus(frame.streamID, SpoolStatusError(.resourceExhausted, "more than \(broker.config.maxInFlightPerConnection) calls in flight on this connection"))
            }
            guard !draining else {
                return writeStatus(frame.streamID, SpoolStatusError(.unavailable, "the broker is shutting down"))
            }
            guard let method = SpoolMethod(rawValue: frame.method) else {
                return writeStatus(frame.streamID, SpoolStatusError(.unimplemented, "unknown method id \(frame.method)"))
            }
            inFlight.insert(frame.streamID)
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
                finish(frame.streamID, error)
            }
        case .cancel:
            if let sub = subscriptions.removeValue(forKey: frame.streamID), let token = sub.waitToken {
                broker.notifier.cancel(sub.tp, token)
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
            let code: Spool_V1_StatusCode = framing.message.contains("over the limit") ? .resourceExhausted : .invalidArgument
            goAway(SpoolStatusError(code, framing.message))
        } else if error is ByteToMessageDecoderError {
            goAway(SpoolStatusError(.invalidArgument, "\(error)"))
        } else {
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for sub in Array(subscriptions.values) { pump(sub) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainEvent {
            draining = true
            // Streams end now; unary calls in flight are answered, then the connection says goodbye.
            for sub in Array(subscriptions.values) {
                if let token = sub.waitToken { broker.notifier.cancel(sub.tp, token) }
                subscriptions.removeValue(forKey: sub.streamID)
                finish(sub.streamID, SpoolStatusError(.unavailable, "the broker is shutting down"))
            }
            goAwayIfDrained()
            return
        }
        if event is IdleStateHandler.IdleStateEvent, inFlight.isEmpty {
            goAway(SpoolStatusError(.unavailable, "idle for \(broker.config.idleTimeoutSeconds) s"))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Dispatch

    private func dispatch(_ method: SpoolMethod, _ frame: Frame) throws {
        let id = frame.streamID
        switch method {
        case .handshake:
            respond(id, try broker.handshake(ProtoCodec.decode(Spool_V1_HandshakeRequest.self, from: frame.message)))
        case .createTopic:
            respond(id, try broker.createTopic(ProtoCodec.decode(Spool_V1_CreateTopicRequest.self, from: frame.message)))
        case .deleteTopic:
            respond(id, try broker.deleteTopic(ProtoCodec.decode(Spool_V1_DeleteTopicRequest.self, from: frame.message)))
        case .listTopics:
            respond(id, broker.listTopics())
        case .describeTopic:
            var response = Spool_V1_DescribeTopicResponse()
            response.topic = try broker.describe(ProtoCodec.decode(Spool_V1_DescribeTopicRequest.self, from: frame.message).name)
            respond(id, response)
        case .alterTopicConfig:
            respond(id, try broker.alterTopic(ProtoCodec.decode(Spool_V1_AlterTopicConfigRequest.self, from: frame.message)))
        case .listOffsets:
            respond(id, broker.listOffsets(try ProtoCodec.decode(Spool_V1_ListOffsetsRequest.self, from: frame.message)))
        case .commitOffsets:
            respond(id, try broker.commitOffsets(ProtoCodec.decode(Spool_V1_CommitOffsetsRequest.self, from: frame.message)))
        case .fetchOffsets:
            respond(id, broker.fetchOffsets(try ProtoCodec.decode(Spool_V1_FetchOffsetsRequest.self, from: frame.message)))
        case .listGroups:
            respond(id, broker.listGroups())
        case .produce:
            try produce(id, try ProtoCodec.decode(Spool_V1_ProduceRequest.self, from: frame.message), payload: frame.payload)
        case .produceRecords:
            try produceRecords(id, try ProtoCodec.decode(Spool_V1_ProduceRecordsRequest.self, from: frame.message))
        case .fetch:
            try fetch(id, try ProtoCodec.decode(Spool_V1_FetchRequest.self, from: frame.message))
        case .subscribe:
            try subscribe(id, try ProtoCodec.decode(Spool_V1_SubscribeRequest.self, from: frame.message))
        }
    }

    // MARK: Produce

    private func produce(_ id: UInt32, _ request: Spool_V1_ProduceRequest, payload: ByteBuffer) throws {
        let declared = request.partitions.reduce(0) { $0 + Int($1.bytes) }
        guard declared == payload.readableBytes else {
            throw SpoolStatusError(.invalidArgument, "partitions declare \(declared) payload bytes but the frame carries \(payload.readableBytes)")
        }
        var response = Spool_V1_ProduceResponse()
        var durable: [(index: Int, log: PartitionLog, offset: Int64)] = []
        var rest = payload
        for p in request.partitions {
            var batches = rest.readSlice(length: Int(p.bytes))!
            var result = Spool_V1_ProducePartitionResult()
            result.partition = p.partition
            do {
                let (log, appended) = try broker.append(TopicPartition(request.topic, p.partition), &batches)
                result.baseOffset = appended.baseOffset
                result.lastOffset = appended.lastOffset
                result.logStartOffset = log.startOffset
                if request.acks == .all { durable.append((response.results.count, log, appended.lastOffset + 1)) }
            } catch {
                let status = StatusMapping.status(for: error)
                result.code = status.code
                result.message = status.message
                result.baseOffset = -1
                result.lastOffset = -1
            }
            response.results.append(result)
        }
        if durable.isEmpty {
            return respond(id, response)
        }
        // acks=all: answer once every partition's appends are fsynced (group commit).
        let bound = self.bound
        let eventLoop = context!.eventLoop
        let pending = response
        Task {
            var response = pending
            for (index, log, offset) in durable {
                do {
                    try await log.waitUntilDurable(offset)
                } catch {
                    let status = StatusMapping.status(for: error)
                    response.results[index].code = status.code
                    response.results[index].message = status.message
                }
            }
            let done = response
            eventLoop.execute { bound.value.respond(id, done, flushNow: true) }
        }
    }

    private func produceRecords(_ id: UInt32, _ request: Spool_V1_ProduceRecordsRequest) throws {
        let logs = try broker.storage.partitions(of: request.topic)
        let config = try broker.storage.topicConfig(request.topic)
        guard !request.records.isEmpty else { return respond(id, Spool_V1_ProduceRecordsResponse()) }
        let count = request.records.count
        let results = NIOLockedValueBox<(remaining: Int, results: [Spool_V1_RecordResult])>((count, Array(repeating: Spool_V1_RecordResult(), count: count)))
        let bound = self.bound
        let eventLoop = context!.eventLoop
        let acksAll = request.acks == .all
        let now = PartitionLog.wallClockMillis()
        var roundRobin = Int32(truncatingIfNeeded: id)
        for (i, record) in request.records.enumerated() {
            var partition = record.partition
            if partition < 0 {
                if record.hasKey {
                    partition = KafkaPartitioner.partition(forKey: Array(record.key), partitions: Int32(logs.count))
                } else {
                    partition = (roundRobin & 0x7FFF_FFFF) % Int32(logs.count)
                    roundRobin &+= 1
                }
            }
            guard partition < Int32(logs.count) else {
                throw SpoolStatusError(.notFound, "topic \(request.topic) has partitions 0..<\(logs.count), not \(partition)")
            }
            let tp = TopicPartition(request.topic, partition)
            let chosen = partition
            let headers = record.headers.map { RecordHeader(key: $0.key, value: $0.hasValue ? ByteBuffer(bytes: $0.value) : nil) }
            broker.accumulator.add(
                tp, codec: config.compression ?? .lz4, lingerMillis: config.lingerMillis,
                key: record.hasKey ? Array(record.key) : nil, value: record.hasValue ? Array(record.value) : nil,
                headers: headers, timestamp: record.timestamp == 0 ? now : record.timestamp, eventLoop: eventLoop
            ) { outcome in
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
                            do { try await logs[Int(p)].waitUntilDurable(end) } catch {
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
    }

    // MARK: Fetch

    struct PlannedPartition {
        var result: Spool_V1_FetchPartitionResult
        var log: PartitionLog?
        var span: FileSpan?
    }

    private func planFetch(_ request: Spool_V1_FetchRequest) -> [PlannedPartition] {
        let frameRoom = broker.config.maxFrameBytes - 64 * 1024
        var remaining = min(request.maxBytes == 0 ? 50 << 20 : Int(request.maxBytes), frameRoom)
        var planned: [PlannedPartition] = []
        for p in request.partitions {
            var result = Spool_V1_FetchPartitionResult()
            result.topic = p.topic
            result.partition = p.partition
            var entry = PlannedPartition(result: result)
            do {
                let log = try broker.storage.partition(TopicPartition(p.topic, p.partition))
                entry.log = log
                let want = min(p.maxBytes == 0 ? 1 << 20 : Int(p.maxBytes), remaining)
                if want > 0 || planned.allSatisfy({ $0.span == nil }) {
                    let read = try log.read(from: p.offset, maxBytes: max(want, 1))
                    entry.result.highWatermark = read.highWatermark
                    entry.result.logStartOffset = read.logStartOffset
                    if let span = read.span, span.length <= frameRoom {
                        entry.span = span
                        remaining -= span.length
                    }
                } else {
                    entry.result.highWatermark = log.highWatermark
                    entry.result.logStartOffset = log.startOffset
                }
            } catch {
                let status = StatusMapping.status(for: error)
                entry.result.code = status.code
                entry.result.message = status.message
                if let log = entry.log {
                    entry.result.highWatermark = log.highWatermark
                    entry.result.logStartOffset = log.startOffset
                }
            }
            planned.append(entry)
        }
        return planned
    }

    private func fetch(_ id: UInt32, _ request: Spool_V1_FetchRequest) throws {
        guard !request.partitions.isEmpty else { throw SpoolStatusError(.invalidArgument, "fetch names no partitions") }
        let maxWait = min(request.maxWaitMs, broker.config.maxFetchWaitMillis)
        fetch(id, request, deadline: .now() + .milliseconds(Int64(maxWait)))
    }

    /// Answers the fetch if it has `min_bytes` (or an error, or the deadline passed);
    /// otherwise waits for an append to any of its partitions, or the deadline, and tries again.
    private func fetch(_ id: UInt32, _ request: Spool_V1_FetchRequest, deadline: NIODeadline) {
        guard let context, inFlight.contains(id) else { return }
        let planned = planFetch(request)
        let bytes = planned.reduce(0) { $0 + ($1.span?.length ?? 0) }
        let failed = planned.contains { $0.result.code != .ok }
        if failed || draining || deadline <= .now() || bytes >= max(1, Int(request.minBytes)) {
            writeFetchResponse(id, planned)
            goAwayIfDrained()
            return
        }
        let eventLoop = context.eventLoop
        let bound = self.bound
        let notifier = broker.notifier
        // Exactly one of "timeout" and "append" wins; the winner cancels the other.
        let state = NIOLockedValueBox<(done: Bool, tokens: [(TopicPartition, UInt64)], timeout: Scheduled<Void>?)>((false, [], nil))
        let wake: @Sendable () -> Void = {
            let claimed = state.withLockedValue { s -> [(TopicPartition, UInt64)]? in
                if s.done { return nil }
                s.done = true
                s.timeout?.cancel()
                return s.tokens
            }
            guard let tokens = claimed else { return }
            for (tp, token) in tokens { notifier.cancel(tp, token) }
            eventLoop.execute {
                bound.value.fetch(id, request, deadline: deadline)
                bound.value.flushIfNeeded()
            }
        }
        var tokens: [(TopicPartition, UInt64)] = []
        for p in request.partitions {
            let tp = TopicPartition(p.topic, p.partition)
            tokens.append((tp, notifier.register(tp, wake)))
        }
        let timeout = eventLoop.scheduleTask(deadline: deadline, wake)
        state.withLockedValue {
            $0.tokens = tokens
            $0.timeout = timeout
        }
        // An append may have landed between planning and registering.
        if request.partitions.contains(where: { p in
            (try? broker.storage.partition(TopicPartition(p.topic, p.partition)).endOffset).map { $0 > p.offset } ?? false
        }) && bytes == 0 {
            wake()
        }
    }

    private func writeFetchResponse(_ id: UInt32, _ planned: [PlannedPartition]) {
        var planned = planned
        // Open the descriptors first: a segment deleted meanwhile must not leave a half-written frame.
        var handles: [NIOFileHandle?] = []
        for i in planned.indices {
            guard let span = planned[i].span, let log = planned[i].log else { handles.append(nil); continue }
            do {
                let fd = try log.openDescriptor(for: span)
                handles.append(NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd))
                planned[i].result.bytes = UInt32(span.length)
            } catch {
                let status = StatusMapping.status(for: error)
                planned[i].result.code = status.code
                planned[i].result.message = status.message
                planned[i].span = nil
                handles.append(nil)
            }
        }
        var response = Spool_V1_FetchResponse()
        response.partitions = planned.map(\.result)
        let regions: [FileRegion] = planned.indices.compactMap { i in
            guard let span = planned[i].span, let handle = handles[i] else { return nil }
            return FileRegion(fileHandle: handle, readerIndex: Int(span.position), endIndex: Int(span.position) + span.length)
        }
        writeMessage(.response, flags: Frame.endStreamFlag, streamID: id, response, regions: regions, closing: handles.compactMap { $0 })
        inFlight.remove(id)
    }

    // MARK: Subscribe

    private func subscribe(_ id: UInt32, _ request: Spool_V1_SubscribeRequest) throws {
        let tp = TopicPartition(request.topic, request.partition)
        let log = try broker.storage.partition(tp)
        guard request.offset >= log.startOffset && request.offset <= log.endOffset else {
            throw StorageError(.offsetOutOfRange, "offset \(request.offset) is outside \(tp), which holds \(log.startOffset)..<\(log.endOffset)")
        }
        let sub = Subscription(
            streamID: id, tp: tp, log: log, nextOffset: request.offset,
            credit: Int(request.initialCreditBytes == 0 ? 1 << 20 : request.initialCreditBytes),
            maxBytesPerEvent: min(Int(request.maxBytesPerEvent == 0 ? 1 << 20 : request.maxBytesPerEvent), broker.config.maxFrameBytes - 64 * 1024))
        subscriptions[id] = sub
        pump(sub)
    }

    /// Sends events while the subscription has credit and the socket is writable;
    /// when it has caught up, waits for the next append.
    private func pump(_ sub: Subscription) {
        guard let context, subscriptions[sub.streamID] === sub, sub.waitToken == nil else { return }
        while sub.credit > 0 && context.channel.isWritable {
            let read: LogReadResult
            do {
                read = try sub.log.read(from: sub.nextOffset, maxBytes: min(sub.credit, sub.maxBytesPerEvent))
            } catch {
                subscriptions.removeValue(forKey: sub.streamID)
                return finish(sub.streamID, error)
            }
            guard let span = read.span else {
                let bound = self.bound
                let eventLoop = context.eventLoop
                let streamID = sub.streamID
                sub.waitToken = broker.notifier.register(sub.tp) {
                    eventLoop.execute {
                        let handler = bound.value
                        guard let sub = handler.subscriptions[streamID] else { return }
                        sub.waitToken = nil
                        handler.pump(sub)
                    }
                }
                // An append may have landed between the read and the registration.
                if sub.log.endOffset > sub.nextOffset, let token = sub.waitToken {
                    broker.notifier.cancel(sub.tp, token)
                    sub.waitToken = nil
                    continue
                }
                break
            }
            let fd: Int32
            do { fd = try sub.log.openDescriptor(for: span) } catch { continue }
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
            var event = Spool_V1_SubscribeEvent()
            event.partition = sub.tp.partition
            event.highWatermark = read.highWatermark
            event.logStartOffset = read.logStartOffset
            event.bytes = UInt32(span.length)
            let region = FileRegion(fileHandle: handle, readerIndex: Int(span.position), endIndex: Int(span.position) + span.length)
            writeMessage(.response, flags: 0, streamID: sub.streamID, event, regions: [region], closing: [handle])
            sub.credit -= span.length
            sub.nextOffset = span.nextOffset
        }
        flushIfNeeded()
    }

    // MARK: Writing

    private func respond<M: SwiftProtobuf.Message>(_ id: UInt32, _ message: M, flushNow: Bool = false) {
        guard inFlight.contains(id) else { return }
        writeMessage(.response, flags: Frame.endStreamFlag, streamID: id, message, regions: [], closing: [])
        inFlight.remove(id)
        if flushNow { flushIfNeeded() }
        goAwayIfDrained()
    }

    /// While draining, says goodbye once the last call in flight was answered.
    private func goAwayIfDrained() {
        if draining && inFlight.isEmpty {
            goAway(SpoolStatusError(.unavailable, "the broker is shutting down"))
        }
    }

    /// Ends call `id` with a STATUS for `error`.
    private func finish(_ id: UInt32, _ error: Error) {
        writeStatus(id, StatusMapping.status(for: error))
        inFlight.remove(id)
        flushIfNeeded()
        goAwayIfDrained()
    }

    private func writeStatus(_ id: UInt32, _ status: SpoolStatusError) {
        writeMessage(.status, flags: Frame.endStreamFlag, streamID: id, status.status, regions: [], closing: [])
    }

    private func writeMessage<M: SwiftProtobuf.Message>(
        _ type: FrameType, flags: UInt8, streamID: UInt32, _ message: M, regions: [FileRegion], closing handles: [NIOFileHandle]
    ) {
        guard let context, !closing else {
            for handle in handles { try? handle.close() }
            return
        }
        let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
        let payloadBytes = regions.reduce(0) { $0 + $1.readableBytes }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerBytes + bytes.count)
        Frame.writeHeader(type: type, flags: flags, streamID: streamID, messageBytes: bytes.count, payloadBytes: payloadBytes, to: &buffer)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        for region in regions {
            context.write(wrapOutboundOut(.fileRegion(region)), promise: nil)
        }
        if !handles.isEmpty {
            // Close the duplicated descriptors once the last region has gone out (or failed).
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
            promise.futureResult.whenComplete { _ in for handle in handles { try? handle.close() } }
        }
        needsFlush = true
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Sends GOAWAY with `status` and closes the connection.
    private func goAway(_ status: SpoolStatusError) {
        guard let context, !closing else { return }
        let bytes: [UInt8] = (try? status.status.serializedBytes()) ?? []
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerBytes + bytes.count)
        Frame.writeHeader(type: .goAway, streamID: 0, messageBytes: bytes.count, payloadBytes: 0, to: &buffer)
        buffer.writeBytes(bytes)
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer))).whenComplete { _ in channel.close(promise: nil) }
    }
}

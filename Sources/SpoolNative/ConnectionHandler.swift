import NIOConcurrencyHelpers
import NIOCore
import SpoolBroker
import SpoolProtocol
import SpoolRecords
import SpoolStorage
import SwiftProtobuf

/// Serves one native-protocol connection: decodes calls, runs them against the broker
/// core, writes answers (batches with `sendfile` via `FileRegion`), and drives the
/// connection's Subscribe streams under their credit windows.
///
/// Runs on the connection's event loop. Calls are independent: each is answered
/// when it completes, in any order.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = IOData

    let broker: Broker
    private var context: ChannelHandlerContext?
    /// Calls open on this connection (unary ones until answered, streams until ended).
    private var inFlight: Set<UInt32> = []
    private var subscriptions: [UInt32: NativeSubscription] = [:]
    /// Fetches waiting for data (long polls), by stream id.
    private var pendingFetches: [UInt32: PendingFetch] = [:]
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
        for sub in subscriptions.values { if let token = sub.waitToken { broker.cancelWait(sub.tp, token) } }
        subscriptions.removeAll()
        for fetch in pendingFetches.values { fetch.cancel() }
        pendingFetches.removeAll()
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
                broker.cancelWait(sub.tp, token)
            }
            pendingFetches.removeValue(forKey: frame.streamID)?.cancel()
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
            for fetch in pendingFetches.values { fetch.finishNow() }
            for sub in Array(subscriptions.values) {
                if let token = sub.waitToken { broker.cancelWait(sub.tp, token) }
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
            respond(id, try handshake(ProtoCodec.decode(Spool_V1_HandshakeRequest.self, from: frame.message)))
        case .createTopic:
            let request = try ProtoCodec.decode(Spool_V1_CreateTopicRequest.self, from: frame.message)
            var configs: [String: String] = [:]
            for c in request.configs { configs[c.key] = c.value }
            answer(id) { [broker, configs] in
                var response = Spool_V1_CreateTopicResponse()
                response.topic = NativeMessages.topic(
                    try await broker.createTopic(request.name, partitions: request.partitions == 0 ? nil : request.partitions, configs: configs))
                return response
            }
        case .deleteTopic:
            let request = try ProtoCodec.decode(Spool_V1_DeleteTopicRequest.self, from: frame.message)
            answer(id) { [broker] in
                try await broker.deleteTopic(request.name)
                return Spool_V1_DeleteTopicResponse()
            }
        case .listTopics:
            var response = Spool_V1_ListTopicsResponse()
            response.topics = broker.listTopics().map { t in
                var s = Spool_V1_TopicSummary()
                s.name = t.name
                s.partitions = t.partitions
                return s
            }
            respond(id, response)
        case .describeTopic:
            var response = Spool_V1_DescribeTopicResponse()
            response.topic = NativeMessages.topic(try broker.describeTopic(ProtoCodec.decode(Spool_V1_DescribeTopicRequest.self, from: frame.message).name))
            respond(id, response)
        case .alterTopicConfig:
            let request = try ProtoCodec.decode(Spool_V1_AlterTopicConfigRequest.self, from: frame.message)
            var set: [String: String] = [:]
            for c in request.set { set[c.key] = c.value }
            answer(id) { [broker, set] in
                var response = Spool_V1_AlterTopicConfigResponse()
                response.topic = NativeMessages.topic(try await broker.alterTopic(request.name, set: set))
                return response
            }
        case .createPartitions:
            let request = try ProtoCodec.decode(Spool_V1_CreatePartitionsRequest.self, from: frame.message)
            answer(id) { [broker] in
                try await broker.addPartitions(topic: request.name, totalCount: request.partitions)
                var response = Spool_V1_CreatePartitionsResponse()
                response.topic = NativeMessages.topic(try broker.describeTopic(request.name))
                return response
            }
        case .listOffsets:
            respond(id, listOffsets(try ProtoCodec.decode(Spool_V1_ListOffsetsRequest.self, from: frame.message)))
        case .commitOffsets:
            let request = try ProtoCodec.decode(Spool_V1_CommitOffsetsRequest.self, from: frame.message)
            var offsets: [TopicPartition: (offset: Int64, metadata: String)] = [:]
            for o in request.offsets { offsets[TopicPartition(o.topic, o.partition)] = (o.offset, o.metadata) }
            answer(id) { [broker, offsets] in
                let refused = try await broker.commitOffsets(group: request.group, offsets)
                if let (tp, code) = refused.sorted(by: { $0.key < $1.key }).first {
                    throw GroupCoordinatorError(code, "offset for \(tp) refused: \(code.rawValue)")
                }
                return Spool_V1_CommitOffsetsResponse()
            }
        case .fetchOffsets:
            let request = try ProtoCodec.decode(Spool_V1_FetchOffsetsRequest.self, from: frame.message)
            var response = Spool_V1_FetchOffsetsResponse()
            response.offsets = try broker.committedOffsets(group: request.group, topics: Set(request.topics)).map { c in
                var o = Spool_V1_GroupOffset()
                o.topic = c.partition.topic
                o.partition = c.partition.partition
                o.offset = c.offset
                o.metadata = c.metadata
                o.commitTimestamp = c.commitTimestamp
                return o
            }
            respond(id, response)
        case .listGroups:
            var response = Spool_V1_ListGroupsResponse()
            response.groups = try broker.listGroups()
            respond(id, response)
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

    /// Runs an async core call (admin work runs on the broker's I/O pool) and answers
    /// call `id` on this connection's event loop when it completes.
    private func answer<M: SwiftProtobuf.Message & Sendable>(_ id: UInt32, _ body: @escaping @Sendable () async throws -> M) {
        let bound = self.bound
        context!.eventLoop.makeFutureWithTask(body).whenComplete { result in
            switch result {
            case .success(let response): bound.value.respond(id, response, flushNow: true)
            case .failure(let error): bound.value.finish(id, error)
            }
        }
    }

    private func handshake(_ request: Spool_V1_HandshakeRequest) throws -> Spool_V1_HandshakeResponse {
        let minVersion = request.minVersion == 0 ? 1 : request.minVersion
        let maxVersion = request.maxVersion == 0 ? 1 : request.maxVersion
        let version = NativeListener.protocolVersion
        guard minVersion <= version && maxVersion >= version else {
            throw SpoolStatusError(.failedPrecondition, "client speaks protocol versions \(minVersion)...\(maxVersion); broker speaks \(version)")
        }
        var response = Spool_V1_HandshakeResponse()
        response.version = version
        response.brokerVersion = Broker.version
        response.maxFrameBytes = UInt32(broker.config.maxFrameBytes)
        response.maxInFlight = UInt32(broker.config.maxInFlightPerConnection)
        return response
    }

    private func listOffsets(_ request: Spool_V1_ListOffsetsRequest) -> Spool_V1_ListOffsetsResponse {
        var response = Spool_V1_ListOffsetsResponse()
        for p in request.partitions {
            var r = Spool_V1_ListOffsetsResult()
            r.topic = p.topic
            r.partition = p.partition
            do {
                let spec: OffsetSpec
                switch p.spec {
                case .earliest: spec = .earliest
                case .latest: spec = .latest
                case .timestamp: spec = .timestamp(p.timestamp)
                case .UNRECOGNIZED(let n): throw SpoolStatusError(.invalidArgument, "unknown offset spec \(n)")
                }
                r.offset = try broker.listOffset(TopicPartition(p.topic, p.partition), spec)
            } catch {
                let status = StatusMapping.status(for: error)
                r.code = status.code
                r.message = status.message
            }
            response.results.append(r)
        }
        return response
    }

    // MARK: Produce

    private func produce(_ id: UInt32, _ request: Spool_V1_ProduceRequest, payload: ByteBuffer) throws {
        let declared = request.partitions.reduce(0) { $0 + Int($1.bytes) }
        guard declared == payload.readableBytes else {
            throw SpoolStatusError(.invalidArgument, "partitions declare \(declared) payload bytes but the frame carries \(payload.readableBytes)")
        }
        var rest = payload
        let parts = request.partitions.map { p in (partition: p.partition, batches: rest.readSlice(length: Int(p.bytes))!) }
        let bound = self.bound
        broker.produce(topic: request.topic, parts, acks: NativeMessages.acks(request.acks), on: context!.eventLoop).whenSuccess { results in
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
                }
                return m
            }
            bound.value.respond(id, response, flushNow: true)
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
                throw SpoolStatusError(.notFound, "topic \(request.topic) has partitions 0–\(logs.count - 1), not \(partition)")
            }
            let tp = TopicPartition(request.topic, partition)
            let chosen = partition
            let headers = record.headers.map { RecordHeader(key: $0.key, value: $0.hasValue ? ByteBuffer(bytes: $0.value) : nil) }
            broker.produceRecord(
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

    private func fetch(_ id: UInt32, _ request: Spool_V1_FetchRequest) throws {
        guard !request.partitions.isEmpty else { throw SpoolStatusError(.invalidArgument, "fetch names no partitions") }
        // Room for the response message: the payload must fit in one frame with it.
        let spanBytesMax = broker.config.maxFrameBytes - 64 * 1024
        let spec = FetchSpec(
            partitions: request.partitions.map { p in
                FetchSpec.Partition(TopicPartition(p.topic, p.partition), offset: p.offset, maxBytes: p.maxBytes == 0 ? 1 << 20 : Int(p.maxBytes))
            },
            maxBytes: min(request.maxBytes == 0 ? 50 << 20 : Int(request.maxBytes), spanBytesMax),
            minBytes: Int(request.minBytes),
            maxWaitMillis: Int64(request.maxWaitMs),
            spanBytesMax: spanBytesMax)
        let pending = broker.fetch(spec, on: context!.eventLoop)
        pendingFetches[id] = pending
        let bound = self.bound
        pending.future.whenComplete { result in
            let handler = bound.value
            handler.pendingFetches.removeValue(forKey: id)
            switch result {
            case .success(let planned): handler.writeFetchResponse(id, planned)
            case .failure(let error): handler.finish(id, error)
            }
            handler.flushIfNeeded()
            handler.goAwayIfDrained()
        }
    }

    private func writeFetchResponse(_ id: UInt32, _ planned: [FetchedPartition]) {
        guard inFlight.contains(id) else { return }
        var results: [Spool_V1_FetchPartitionResult] = []
        var regions: [FileRegion] = []
        var handles: [NIOFileHandle] = []
        // Open the descriptors first: a segment deleted meanwhile must not leave a half-written frame.
        for p in planned {
            var result = Spool_V1_FetchPartitionResult()
            result.topic = p.topicPartition.topic
            result.partition = p.topicPartition.partition
            result.highWatermark = p.highWatermark
            result.logStartOffset = p.logStartOffset
            var failure = p.error
            if failure == nil, let span = p.span, let log = p.log {
                do {
                    let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: try log.openDescriptor(for: span))
                    handles.append(handle)
                    regions.append(FileRegion(fileHandle: handle, readerIndex: Int(span.position), endIndex: Int(span.position) + span.length))
                    result.bytes = UInt32(span.length)
                } catch {
                    failure = error
                }
            }
            if let failure {
                let status = StatusMapping.status(for: failure)
                result.code = status.code
                result.message = status.message
            }
            results.append(result)
        }
        var response = Spool_V1_FetchResponse()
        response.partitions = results
        writeMessage(.response, flags: Frame.endStreamFlag, streamID: id, response, regions: regions, closing: handles)
        inFlight.remove(id)
    }

    // MARK: Subscribe

    private func subscribe(_ id: UInt32, _ request: Spool_V1_SubscribeRequest) throws {
        let tp = TopicPartition(request.topic, request.partition)
        let log = try broker.storage.partition(tp)
        guard request.offset >= log.startOffset && request.offset <= log.endOffset else {
            throw StorageError(.offsetOutOfRange, "offset \(request.offset) is outside \(tp), which holds \(log.startOffset)–\(log.endOffset - 1)")
        }
        let sub = NativeSubscription(
            streamID: id, tp: tp, log: log, nextOffset: request.offset,
            credit: Int(request.initialCreditBytes == 0 ? 1 << 20 : request.initialCreditBytes),
            maxBytesPerEvent: min(Int(request.maxBytesPerEvent == 0 ? 1 << 20 : request.maxBytesPerEvent), broker.config.maxFrameBytes - 64 * 1024))
        subscriptions[id] = sub
        pump(sub)
    }

    /// Sends events while the subscription has credit and the socket is writable;
    /// when it has caught up, waits for the next append.
    private func pump(_ sub: NativeSubscription) {
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
                sub.waitToken = broker.waitForAppend(sub.tp) {
                    eventLoop.execute {
                        let handler = bound.value
                        guard let sub = handler.subscriptions[streamID] else { return }
                        sub.waitToken = nil
                        handler.pump(sub)
                    }
                }
                // An append may have landed between the read and the registration.
                if sub.log.endOffset > sub.nextOffset, let token = sub.waitToken {
                    broker.cancelWait(sub.tp, token)
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

import NIOCore
import SpoolBroker

/// One Kafka client connection: reads request frames, starts each request at once
/// (requests pipeline), and writes the answers strictly in request order, because the
/// Kafka protocol has no stream ids (KAFKA.md, pitfall 7).
///
/// Reading is manual (`autoRead` off): the handler reads ahead while fewer than
/// `maxInFlight` requests are unanswered and stops otherwise, so one client cannot make
/// the broker buffer unbounded work. Fetch answers go out as the header bytes followed
/// by `FileRegion`s (sendfile); their descriptors are closed once written.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Sent by the listener at shutdown: answer what was read, read nothing more, close.
    struct DrainEvent: Sendable {}

    private let apis: KafkaAPIs
    private let maxInFlight: Int
    private var context: ChannelHandlerContext?
    /// Sequence number of the next request read / the next answer to write.
    private var nextRequest: UInt64 = 0
    private var nextAnswer: UInt64 = 0
    /// Answers that completed before an earlier one.
    private var ready: [UInt64: KafkaReply] = [:]
    /// Long polls in progress, cancelled if the client goes away.
    private var fetches: [UInt64: PendingFetch] = [:]
    private var readRequested = false
    private var draining = false
    private var closing = false
    private var clientHost = ""
    private var calls: KafkaCallMetrics

    init(apis: KafkaAPIs, maxInFlight: Int) {
        precondition(maxInFlight >= 1)
        self.apis = apis
        self.maxInFlight = maxInFlight
        calls = KafkaCallMetrics(events: apis.broker.events)
    }

    private var inFlight: Int { Int(nextRequest - nextAnswer) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress { clientHost = "/" + (address.ipAddress ?? "") }
        calls.connectionOpened(client: context.channel.remoteAddress.map { "\($0)" } ?? "?")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        calls.connectionClosed()
        for fetch in fetches.values { fetch.cancel() }
        fetches.removeAll()
        // Descriptors of answers that will never be written.
        for reply in ready.values {
            if case .response(_, let spans) = reply { release(spans) }
        }
        ready.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Reading, bounded by in-flight requests

    func read(context: ChannelHandlerContext) {
        if inFlight < maxInFlight && !draining && !closing {
            context.read()
        } else {
            readRequested = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !draining && !closing else { return }
        let frame = unwrapInboundIn(data)
        let sequence = nextRequest
        nextRequest += 1
        calls.started(sequence, frame)
        let started = apis.handle(frame, clientHost: clientHost, eventLoop: context.eventLoop)
        if let fetch = started.fetch { fetches[sequence] = fetch }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        started.reply.hop(to: context.eventLoop).whenComplete { result in
            let handler = bound.value
            handler.fetches.removeValue(forKey: sequence)
            switch result {
            case .success(let reply): handler.complete(sequence, reply)
            case .failure(let error): handler.complete(sequence, .close(reason: "request failed: \(error)"))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Reading is manual: ask for more while under the in-flight bound.
        if inFlight < maxInFlight && !draining && !closing {
            context.read()
        } else {
            readRequested = true
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A framing error (size out of range): answer what came before, then close.
        if error is KafkaDecodingError {
            let sequence = nextRequest
            nextRequest += 1
            complete(sequence, .close(reason: "\(error)"))
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Idle: close unless a request (a long poll, a held JoinGroup) is still open.
            if inFlight == 0 { context.close(promise: nil) }
        } else if event is DrainEvent {
            draining = true
            for fetch in fetches.values { fetch.finishNow() }
            if inFlight == 0 { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Writing, in request order

    private func complete(_ sequence: UInt64, _ reply: KafkaReply) {
        guard let context, !closing else {
            if case .response(_, let spans) = reply { release(spans) }
            return
        }
        ready[sequence] = reply
        var wrote = false
        while let next = ready.removeValue(forKey: nextAnswer) {
            if case .close = next { calls.ended(nextAnswer, error: "CLOSED") } else { calls.ended(nextAnswer) }
            nextAnswer += 1
            switch next {
            case .response(let frame, let spans):
                write(frame, spans: spans, context: context)
                wrote = true
            case .noResponse:
                break
            case .close:
                closing = true
                // Close once what is queued before it has gone out.
                let flushed = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: flushed)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                flushed.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
                return
            }
        }
        if wrote { context.flush() }
        if draining && inFlight == 0 {
            context.close(promise: nil)
        } else if readRequested && inFlight < maxInFlight {
            readRequested = false
            context.read()
        }
    }

    /// Closes the spans of a response (written, or never to be), which gives their
    /// descriptors back to the connection's budget.
    private func release(_ spans: [FetchedSpan]) {
        for span in spans { span.close() }
    }

    /// The response bytes, with each deferred records span sent as its `FileRegion`.
    private func write(_ frame: KafkaResponseFrame, spans: [FetchedSpan], context: ChannelHandlerContext) {
        precondition(spans.count == frame.deferredSpans.count, "one span per deferred records field")
        let bytes = frame.bytes
        var cursor = bytes.readerIndex
        for (deferred, span) in zip(frame.deferredSpans, spans) {
            assert(span.byteCount == deferred.byteCount, "the span is what the length prefix announced")
            if deferred.position > cursor {
                context.write(wrapOutboundOut(.byteBuffer(bytes.getSlice(at: cursor, length: deferred.position - cursor)!)), promise: nil)
            }
            context.write(wrapOutboundOut(.fileRegion(span.region)), promise: nil)
            cursor = deferred.position
        }
        let rest = bytes.getSlice(at: cursor, length: bytes.writerIndex - cursor)!
        if spans.isEmpty {
            context.write(wrapOutboundOut(.byteBuffer(rest)), promise: nil)
        } else {
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { _ in for span in spans { span.close() } }
            context.write(wrapOutboundOut(.byteBuffer(rest)), promise: written)
        }
    }
}

import NIOCore
import NIOSSL
import NIOTLS
import SpoolBroker
import SpoolSecurity
import SpoolTransport

/// One Kafka client connection: reads request frames, starts each request at once
/// (requests pipeline), and writes the answers strictly in request order, because the
/// Kafka protocol has no stream ids (KAFKA.md, pitfall 7).
///
/// Reading is manual (`autoRead` off): the handler reads ahead while fewer than
/// `maxInFlight` requests are unanswered and holds `ReadHold.requestsInFlight` otherwise,
/// so one client cannot make the broker buffer unbounded work. The `TransportHandler`
/// before it does the rest, as for the native listener: it writes the answers (Fetch
/// records as `FileRegion`s, sendfile, their descriptors closed once written), keeps the
/// outbound ledger and stops reading while the socket is unwritable or too much is
/// queued, and drops a sender whose request does not complete in time.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Transmission
    typealias OutboundOut = Transmission

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
    /// `ReadHold.requestsInFlight` is held at the transport.
    private var holdingForInFlight = false
    private var draining = false
    private var closing = false
    private var clientHost = ""
    private var calls: KafkaCallMetrics
    /// The SASL state on a SASL listener (nil: no SASL).
    private let sasl: KafkaSaslGate?
    /// Who the client is: from SASL, else a verified TLS client certificate, else anonymous.
    private(set) var principal = Principal.anonymous
    private var certificatePrincipal: Principal?

    init(apis: KafkaAPIs, maxInFlight: Int, sasl: KafkaSaslGate? = nil) {
        precondition(maxInFlight >= 1)
        self.apis = apis
        self.maxInFlight = maxInFlight
        self.sasl = sasl
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
        // Draining or closing: nothing more is read. The in-flight bound is the
        // transport's to enforce (`ReadHold.requestsInFlight`), so it knows the broker,
        // not the sender, is why a request is not completing.
        guard !draining && !closing else { return }
        context.read()
    }

    /// Holds reads at the transport while `maxInFlight` requests are unanswered.
    private func updateInFlightHold(_ context: ChannelHandlerContext) {
        let atLimit = inFlight >= maxInFlight
        guard atLimit != holdingForInFlight else { return }
        holdingForInFlight = atLimit
        context.triggerUserOutboundEvent(ReadHold.Change(.requestsInFlight, held: atLimit), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !draining && !closing else { return }
        let frame = unwrapInboundIn(data)
        let sequence = nextRequest
        nextRequest += 1
        updateInFlightHold(context)
        calls.started(sequence, frame)
        if let sasl {
            if case .answer(let reply) = sasl.admit(frame) {
                if let who = sasl.principal { principal = who }
                return complete(sequence, reply)
            }
        }
        let started = apis.handle(frame, clientHost: clientHost, principal: principal, eventLoop: context.eventLoop)
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
        // Reading is manual: ask for more (the transport holds it while reads are paused).
        if !draining && !closing { context.read() }
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
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            // Mutual TLS: a verified client certificate names the principal (SASL, if any, overrides it).
            if let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
               let certificate = handler.peerCertificate, let who = TLSSettings.principal(of: certificate) {
                certificatePrincipal = who
                if sasl?.principal == nil { principal = who }
            }
            return context.fireUserInboundEventTriggered(event)
        }
        if let transport = event as? TransportEvent {
            if case .frameTimedOut(let bytes, let seconds) = transport {
                // The protocol has no way to say why: closed, as Kafka's broker closes.
                apis.broker.events.budgetHit(
                    "frame.completion.seconds", client: clientHost,
                    detail: "a request of \(bytes) bytes was not completed within \(seconds) s")
                closing = true
                context.close(promise: nil)
            }
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
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
            if case .close = next { calls.ended(nextAnswer, error: "CLOSED") } else if case .responseThenClose = next { calls.ended(nextAnswer, error: "CLOSED") } else { calls.ended(nextAnswer) }
            nextAnswer += 1
            switch next {
            case .response(let frame, let spans):
                write(frame, spans: spans, context: context)
                wrote = true
            case .noResponse:
                break
            case .responseThenClose(let frame, _):
                write(frame, spans: [], context: context)
                closing = true
                let flushed = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(Transmission(ByteBuffer())), promise: flushed)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                flushed.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
                return
            case .close:
                closing = true
                // Close once what is queued before it has gone out.
                let flushed = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(wrapOutboundOut(Transmission(ByteBuffer())), promise: flushed)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                flushed.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
                return
            }
        }
        if wrote { context.flush() }
        if draining && inFlight == 0 {
            context.close(promise: nil)
        } else {
            updateInFlightHold(context)
        }
    }

    /// Closes the spans of a response (written, or never to be), which gives their
    /// descriptors back to the connection's budget.
    private func release(_ spans: [FetchedSpan]) {
        for span in spans { span.close() }
    }

    /// The response bytes, with each deferred records span spliced in where its length
    /// prefix announced it (the transport sends it as a `FileRegion` and closes it once written).
    private func write(_ frame: KafkaResponseFrame, spans: [FetchedSpan], context: ChannelHandlerContext) {
        precondition(spans.count == frame.deferredSpans.count, "one span per deferred records field")
        let splices = zip(frame.deferredSpans, spans).map { deferred, span in
            assert(span.byteCount == deferred.byteCount, "the span is what the length prefix announced")
            return Transmission.Splice(position: deferred.position, span: span)
        }
        context.write(wrapOutboundOut(Transmission(frame.bytes, splices: splices)), promise: nil)
    }
}

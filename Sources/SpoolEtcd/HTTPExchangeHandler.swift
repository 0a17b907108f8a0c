import NIOCore
import NIOHTTP1

/// A complete HTTP answer to a unary call.
struct HTTPAnswer: Sendable {
    var status: HTTPResponseStatus
    var body: ByteBuffer
    /// The server keeps the connection open for another request.
    var keepAlive: Bool
}

/// Why one attempt on one connection failed, and whether the request may have reached etcd
/// (`sent`): a request that certainly did not can go to another endpoint whatever it does.
struct HTTPAttemptError: Error {
    var error: EtcdError
    var sent: Bool
}

/// Receives a streamed answer's body (a watch): called on the channel's event loop only.
protocol HTTPStreamSink: AnyObject {
    func streamHead(_ status: HTTPResponseStatus)
    func streamBody(_ buffer: ByteBuffer)
    /// The answer ended (`nil`) or the connection failed.
    func streamEnd(_ error: HTTPAttemptError?)
}

/// One HTTP/1.1 exchange at a time on one connection: writes a request, collects the answer
/// (bounded) or hands a streamed body to a sink, fails the exchange when the connection drops or
/// its deadline passes (and then closes the connection, whose state is unknown).
///
/// Every method runs on the channel's event loop; `@unchecked Sendable` only lets the handler
/// be handed to that loop.
final class HTTPExchangeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private enum Sink {
        case unary(EventLoopPromise<HTTPAnswer>, bodyBytesMax: Int)
        case stream(any HTTPStreamSink)
    }

    let endpoint: String
    private var context: ChannelHandlerContext?
    private var sink: Sink?
    private var deadlineTask: Scheduled<Void>?
    private var status: HTTPResponseStatus = .ok
    private var keepAlive = true
    private var body: ByteBuffer?
    /// A byte of the answer arrived: the request reached the server.
    private var answered = false
    private var written = false

    init(endpoint: String) { self.endpoint = endpoint }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Starts an exchange whose answer completes `promise`.
    func sendUnary(head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline, bodyBytesMax: Int, promise: EventLoopPromise<HTTPAnswer>) {
        start(head: head, body: body, deadline: deadline, sink: .unary(promise, bodyBytesMax: bodyBytesMax))
    }

    /// Starts an exchange whose answer streams into `sink`; `deadline` bounds the wait for the
    /// answer's head only (a watch stays open as long as it is wanted).
    func sendStream(head: HTTPRequestHead, body: ByteBuffer, headDeadline: NIODeadline, sink: any HTTPStreamSink) {
        start(head: head, body: body, deadline: headDeadline, sink: .stream(sink))
    }

    private func start(head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline, sink: Sink) {
        guard let context, context.channel.isActive, self.sink == nil else {
            fail(sink, HTTPAttemptError(error: EtcdError(.unavailable, "connection closed", endpoint: endpoint), sent: false))
            return
        }
        self.sink = sink
        status = .ok
        keepAlive = true
        self.body = nil
        answered = false
        written = false
        deadlineTask = context.eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            self?.failCurrent(EtcdError(.timeout, "no answer before the deadline", endpoint: self?.endpoint), close: true)
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success: self.written = true
            case .failure(let error):
                self.failCurrent(EtcdError(.unavailable, "write failed: \(error)", endpoint: self.endpoint), close: true, sent: false)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answered = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            keepAlive = head.isKeepAlive
            if case .stream(let stream) = sink {
                deadlineTask?.cancel() // the head came: a stream has no deadline past it
                deadlineTask = nil
                stream.streamHead(head.status)
            }
        case .body(var part):
            switch sink {
            case .unary(_, let bodyBytesMax):
                if (body?.readableBytes ?? 0) + part.readableBytes > bodyBytesMax {
                    failCurrent(EtcdError(.invalidResponse, "answer over \(bodyBytesMax) bytes", endpoint: endpoint), close: true)
                    return
                }
                if body == nil { body = part } else { body!.writeBuffer(&part) }
            case .stream(let stream): stream.streamBody(part)
            case nil: break
            }
        case .end:
            deadlineTask?.cancel()
            deadlineTask = nil
            let current = sink
            sink = nil
            switch current {
            case .unary(let promise, _):
                promise.succeed(HTTPAnswer(status: status, body: body ?? ByteBuffer(), keepAlive: keepAlive))
            case .stream(let stream): stream.streamEnd(nil)
            case nil: break
            }
            body = nil
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failCurrent(EtcdError(.unavailable, "connection closed", endpoint: endpoint), close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failCurrent(EtcdError(.unavailable, "connection error: \(error)", endpoint: endpoint), close: true)
    }

    /// Fails the exchange in progress, if any. `sent` nil: decided by what happened so far.
    func failCurrent(_ error: EtcdError, close: Bool, sent: Bool? = nil) {
        deadlineTask?.cancel()
        deadlineTask = nil
        let current = sink
        sink = nil
        body = nil
        if let current {
            fail(current, HTTPAttemptError(error: error, sent: sent ?? (written || answered)))
        }
        if close, let context { context.close(promise: nil) }
    }

    private func fail(_ sink: Sink, _ error: HTTPAttemptError) {
        switch sink {
        case .unary(let promise, _): promise.fail(error)
        case .stream(let stream): stream.streamEnd(error)
        }
    }
}

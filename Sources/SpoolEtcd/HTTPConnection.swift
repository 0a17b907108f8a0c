import NIOCore
import NIOHTTP1
import NIOPosix

/// One TCP connection to one etcd member speaking HTTP/1.1, one exchange at a time.
final class HTTPConnection: Sendable {
    let channel: any Channel
    let handler: HTTPExchangeHandler
    let endpoint: EtcdEndpoint

    private init(channel: any Channel, handler: HTTPExchangeHandler, endpoint: EtcdEndpoint) {
        self.channel = channel
        self.handler = handler
        self.endpoint = endpoint
    }

    /// Connects, bounded by `timeout`. A failure is never `sent`: nothing reached etcd.
    static func connect(to endpoint: EtcdEndpoint, group: any EventLoopGroup, timeout: TimeAmount) async throws -> HTTPConnection {
        let handler = HTTPExchangeHandler(endpoint: endpoint.description)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
            return HTTPConnection(channel: channel, handler: handler, endpoint: endpoint)
        } catch {
            throw HTTPAttemptError(error: EtcdError(.unavailable, "connect failed: \(error)", endpoint: endpoint.description), sent: false)
        }
    }

    var isActive: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }

    private func head(path: String, bodyBytes: Int) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(bodyBytes))
        return head
    }

    /// POSTs `body` to `path` and returns the whole answer; a cancelled task closes the connection.
    func unary(path: String, body: ByteBuffer, deadline: NIODeadline, bodyBytesMax: Int) async throws -> HTTPAnswer {
        let promise = channel.eventLoop.makePromise(of: HTTPAnswer.self)
        let head = head(path: path, bodyBytes: body.readableBytes)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.sendUnary(head: head, body: body, deadline: deadline, bodyBytesMax: bodyBytesMax, promise: promise)
        }
        let channel = self.channel
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// POSTs `body` to `path` and streams the answer into `sink` (on the event loop).
    func stream(path: String, body: ByteBuffer, headDeadline: NIODeadline, sink: any HTTPStreamSink & Sendable) {
        let head = head(path: path, bodyBytes: body.readableBytes)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.sendStream(head: head, body: body, headDeadline: headDeadline, sink: sink)
        }
    }
}

import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sits on a listener's server channel: when `accept` fails because the process is out of
/// descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), it turns the channel's
/// `autoRead` off for `pause`, then on again. Without it the event loop retries at once,
/// forever, burning a core: the waiting connection stays in the backlog, so the socket
/// stays readable (and NIO keeps its read pending after a failed accept).
///
/// ```swift
/// ServerBootstrap(group: group).serverChannelInitializer { channel in
///     channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptThrottle()) }
/// }
/// ```
public final class AcceptThrottle: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = Channel
    public typealias InboundOut = Channel

    /// How long accepting pauses after such a failure.
    public let pause: TimeAmount
    /// Pauses so far (for tests and logs).
    public private(set) var pauses = 0
    private var resume: Scheduled<Void>?
    private let failed: @Sendable () -> Void

    /// `failed` is called once per failed accept (a metric: a busy loop shows as thousands
    /// of failures a second, a paused listener as one per `pause`).
    public init(pause: TimeAmount = .milliseconds(100), failed: @escaping @Sendable () -> Void = {}) {
        self.pause = pause
        self.failed = failed
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let io = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode) else {
            return context.fireErrorCaught(error)
        }
        failed()
        guard resume == nil else { return }
        pauses += 1
        let channel = context.channel
        try? channel.syncOptions?.setOption(.autoRead, value: false)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            resume = nil
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }
}

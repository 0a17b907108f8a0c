import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SpoolProtocol

/// Routes inbound frames to the waiting calls and streams of one `Transport`, and
/// fails them all, once, when the connection ends.
final class ClientHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = Frame

    let calls: NIOLockedValueBox<Transport.CallTable>
    let address: String
    let onClose: @Sendable (Error) -> Void
    /// The connection runs TLS (for the wording of failures).
    let tls: Bool

    init(calls: NIOLockedValueBox<Transport.CallTable>, address: String, tls: Bool = false, onClose: @escaping @Sendable (Error) -> Void) {
        self.calls = calls
        self.address = address
        self.tls = tls
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let reply = SpoolReply(message: frame.message, payload: frame.payload)
        switch frame.type {
        case .response:
            if let c = calls.withLockedValue({ $0.unary.removeValue(forKey: frame.streamID) }) {
                c.reply.complete(.success(reply))
            } else if let stream = calls.withLockedValue({ frame.endStream ? $0.streams.removeValue(forKey: frame.streamID) : $0.streams[frame.streamID] }) {
                stream.yield(reply)
                if frame.endStream { stream.finish() }
            }
        case .status:
            let status = (try? ProtoCodec.decode(Spool_V1_Status.self, from: frame.message)).map(SpoolStatusError.init)
                ?? SpoolStatusError(.unknown, "unreadable status from \(address)")
            if let c = calls.withLockedValue({ $0.unary.removeValue(forKey: frame.streamID) }) {
                c.reply.complete(.failure(status))
            } else if let stream = calls.withLockedValue({ $0.streams.removeValue(forKey: frame.streamID) }) {
                if status.code == .cancelled { stream.finish() } else { stream.finish(throwing: status) }
            }
        case .goAway:
            let status = (try? ProtoCodec.decode(Spool_V1_Status.self, from: frame.message)).map(SpoolStatusError.init)
            if let status, status.code != .unavailable {
                // A refusal with a reason (over max.connections, a budget, a protocol error):
                // the caller sees the broker's own status and message.
                failAll(status)
            } else {
                // Draining, idle: the connection is gone, a new one may be opened.
                let message = status.map { "the broker at \(address) closed the connection: \($0.message)" } ?? "the broker at \(address) closed the connection"
                failAll(SpoolClientError(.connectionLost, message))
            }
            context.close(promise: nil)
        default:
            failAll(SpoolClientError(.notASpoolBroker, "\(address) sent an unexpected \(frame.type) frame"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SpoolClientError(.connectionLost, "the connection to \(address) closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            failAll(SpoolClientError(.tlsFailed, "the TLS handshake with \(address) failed: \(error) (does the listener speak TLS, and does the CA sign its certificate?)"))
        } else if error is FramingError || error is ByteToMessageDecoderError {
            let hint = tls ? "" : " (a TLS listener needs the client's TLS settings, e.g. --tls-ca)"
            failAll(SpoolClientError(.notASpoolBroker, "\(address) does not speak the Spool protocol: \(error)\(hint)"))
        } else if let e = error as? IOError {
            failAll(SpoolClientError(.connectionLost, "the connection to \(address) failed: \(errnoText(e.errnoCode))"))
        } else {
            failAll(SpoolClientError(.connectionLost, "the connection to \(address) failed: \(error)"))
        }
        context.close(promise: nil)
    }

    /// Fails every call in flight with `error` (the first error wins) and reports the end.
    private func failAll(_ error: Error) {
        let (unary, streams, first) = calls.withLockedValue { t in
            let first = t.closedError == nil
            if first { t.closedError = error }
            defer {
                t.unary.removeAll()
                t.streams.removeAll()
            }
            return (Array(t.unary.values), Array(t.streams.values), first)
        }
        let cause = calls.withLockedValue { $0.closedError! }
        unary.forEach { $0.reply.complete(.failure(cause)) }
        streams.forEach { $0.finish(throwing: cause) }
        if first { onClose(cause) }
    }
}

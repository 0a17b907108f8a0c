import Foundation
import NIOCore
import NIOHTTP1

/// Splits a watch's streamed answer into JSON lines and turns each into an
/// `EtcdWatchResponse` (or the error that ends the watch). Runs on the connection's event loop
/// only; `@unchecked Sendable` lets it be handed there.
final class WatchStreamSink: HTTPStreamSink, @unchecked Sendable {
    private let endpoint: String
    private let lineBytesMax: Int
    private let created: EventLoopPromise<Int64>
    private let continuation: AsyncThrowingStream<EtcdWatchResponse, any Error>.Continuation
    private var pending = ByteBuffer()
    private var status: HTTPResponseStatus = .ok
    private var isCreated = false
    private var finished = false

    init(endpoint: String, lineBytesMax: Int, created: EventLoopPromise<Int64>,
         continuation: AsyncThrowingStream<EtcdWatchResponse, any Error>.Continuation) {
        self.endpoint = endpoint
        self.lineBytesMax = lineBytesMax
        self.created = created
        self.continuation = continuation
    }

    func streamHead(_ status: HTTPResponseStatus) { self.status = status }

    func streamBody(_ buffer: ByteBuffer) {
        guard !finished else { return }
        var buffer = buffer
        pending.writeBuffer(&buffer)
        guard status == .ok else { return } // an error answer: parsed whole at the end
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readerIndex
            let line = pending.readSlice(length: length)!
            pending.moveReaderIndex(forwardBy: 1)
            handle(line: line)
            if finished { return }
        }
        if pending.readableBytes > lineBytesMax {
            finish(EtcdError(.invalidResponse, "watch line over \(lineBytesMax) bytes", endpoint: endpoint))
        }
        pending.discardReadBytes()
    }

    func streamEnd(_ error: HTTPAttemptError?) {
        guard !finished else { return }
        if status != .ok {
            let detail = (try? JSONDecoder().decode(GW.UnaryError.self, from: Data(pending.readableBytesView)))
            finish(EtcdError.fromGateway(
                grpcCode: detail?.code ?? 2, message: detail?.message ?? "HTTP \(status.code)", endpoint: endpoint, isLeaseCall: false))
            return
        }
        if pending.readableBytes > 0 { handle(line: pending) }
        finish(error?.error ?? EtcdError(.unavailable, "watch stream ended", endpoint: endpoint))
    }

    private func handle(line: ByteBuffer) {
        guard line.readableBytesView.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { return }
        let message: GW.StreamLine<GW.WatchResponse>
        do {
            message = try JSONDecoder().decode(GW.StreamLine<GW.WatchResponse>.self, from: Data(line.readableBytesView))
        } catch {
            finish(EtcdError(.invalidResponse, "watch line is not JSON: \(error)", endpoint: endpoint))
            return
        }
        if let error = message.error {
            finish(EtcdError.fromGateway(grpcCode: error.grpc_code ?? 2, message: error.message ?? "", endpoint: endpoint, isLeaseCall: false))
            return
        }
        guard let result = message.result else { return }
        let revision = GW.int(result.header?.revision)
        if result.created == true && !isCreated {
            isCreated = true
            created.succeed(revision)
        }
        if result.canceled == true {
            let compact = GW.int(result.compact_revision)
            if compact > 0 {
                finish(EtcdError(.compacted, "watch start revision was compacted", endpoint: endpoint, compactRevision: compact))
            } else {
                finish(EtcdError(.cancelled, "etcd cancelled the watch: \(result.cancel_reason ?? "")", endpoint: endpoint))
            }
            return
        }
        let events = (result.events ?? []).compactMap { event -> EtcdWatchEvent? in
            guard let kv = event.kv else { return nil }
            return EtcdWatchEvent(kind: event.type == "DELETE" ? .delete : .put, kv: kv.model, previous: event.prev_kv?.model)
        }
        if !events.isEmpty || result.created != true {
            continuation.yield(EtcdWatchResponse(events: events, revision: revision))
        }
    }

    /// The watch's member stopped serving (the client's probe failed): the watch ends with `error`.
    func fail(_ error: EtcdError) { finish(error) }

    /// The client cancelled the watch.
    func cancel() { finish(EtcdError(.cancelled, "watch cancelled", endpoint: endpoint)) }

    private func finish(_ error: EtcdError) {
        guard !finished else { return }
        finished = true
        if !isCreated { created.fail(error) }
        continuation.finish(throwing: error)
    }
}

import Foundation
import NIOCore
import NIOPosix
import SpoolProtocol
import SwiftProtobuf

/// A raw native-protocol client for abuse tests: writes whatever frames (or bytes) it is
/// told to, keeps every byte the broker sends, and can refuse to read its socket at all.
final class RawClient: @unchecked Sendable {
    let channel: Channel
    private let collector: Collector

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let lock = NSLock()
        private var bytes = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            lock.lock()
            bytes.writeBuffer(&buffer)
            lock.unlock()
        }

        var received: ByteBuffer {
            lock.lock()
            defer { lock.unlock() }
            return bytes
        }
    }

    /// Connects; with `reading: false` the client never reads its socket (and asks for a
    /// small receive buffer), so whatever the broker writes piles up on the broker's side.
    init(port: Int, group: EventLoopGroup, reading: Bool = true) async throws {
        let collector = Collector()
        self.collector = collector
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.autoRead, value: reading)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
        if !reading {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
    }

    static func frame(_ type: FrameType = .request, method: SpoolMethod? = nil, stream: UInt32, _ message: some SwiftProtobuf.Message) throws -> ByteBuffer {
        let bytes: [UInt8] = try message.serializedBytes()
        var buffer = ByteBuffer()
        Frame(type: type, method: method?.rawValue ?? 0, streamID: stream, message: ByteBuffer(bytes: bytes)).encode(into: &buffer)
        return buffer
    }

    func write(_ buffer: ByteBuffer) {
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// The frames received so far.
    var frames: [Frame] {
        var bytes = collector.received
        var out: [Frame] = []
        while let frame = try? FrameDecoder.decodeFrame(from: &bytes, maxFrameBytes: 1 << 30) { out.append(frame) }
        return out
    }

    /// Waits (bounded) until a GOAWAY arrives and the broker closes the connection; returns the GOAWAY's status.
    func goAwayAndClose(within seconds: Int64 = 20) async throws -> Spool_V1_Status? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while channel.isActive && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        guard !channel.isActive, let goAway = frames.last(where: { $0.type == .goAway }) else { return nil }
        return try ProtoCodec.decode(Spool_V1_Status.self, from: goAway.message)
    }

    func close() async {
        try? await channel.close()
    }
}

/// Waits (bounded) for `condition`, polling; returns whether it became true.
func waitFor(seconds: Int64 = 20, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try condition()
}

/// Descriptors this process holds on files under `directory` (other tests' files excluded).
func descriptorsOpen(under directory: String) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    let prefix = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
    return fds.filter { fd in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd))?.hasPrefix(prefix) ?? false
    }.count
}


import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/1.1 request over a fresh connection (plain or TLS), `Connection: close`, the
/// whole answer read until the server closes: what the security tests need to see raw
/// status lines and headers (URLSession would answer a 401 challenge or refuse a test CA).
struct RawHTTPClient {
    /// Longest a request may take, connection and handshake included.
    static let timeout = TimeAmount.seconds(60)  // a debug PBKDF2 login on a loaded 2-core machine takes seconds

    struct Answer {
        var status: Int
        var headers: [(String, String)]
        var body: String
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    let address: String
    /// TLS trusting this context's roots (nil: plain HTTP).
    var tls: NIOSSLContext?

    func get(_ path: String, user: String? = nil, password: String? = nil, authorization: String? = nil) async throws -> Answer {
        var headers = "Host: \(address)\r\nConnection: close\r\n"
        if let user, let password {
            headers += "Authorization: Basic \(Data("\(user):\(password)".utf8).base64EncodedString())\r\n"
        } else if let authorization {
            headers += "Authorization: \(authorization)\r\n"
        }
        let raw = try await exchange("GET \(path) HTTP/1.1\r\n\(headers)\r\n")
        guard let split = raw.range(of: "\r\n\r\n") else { throw RawHTTPError("no header end in '\(raw.prefix(200))'") }
        let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw RawHTTPError("bad status line '\(lines[0])'") }
        let fields = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Answer(status: status, headers: fields, body: String(raw[split.upperBound...]))
    }

    /// Sends `request` and returns every byte until the connection closes.
    func exchange(_ request: String) async throws -> String {
        let parts = address.split(separator: ":")
        let collector = Collector()
        let tls = self.tls
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(Self.timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: String(parts[0]), port: Int(parts[1])!).get()
        channel.eventLoop.scheduleTask(in: Self.timeout) { channel.close(promise: nil) }
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        return try await collector.done.futureResult.get()
    }

    final class Collector: ChannelInboundHandler, @unchecked Sendable {  // used on its channel's loop only
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        var error: Error?
        let done = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: String.self)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += Self.unwrapInboundIn(data).readableBytesView
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            // A TLS peer closing without close_notify after a full answer is still an answer.
            if case NIOSSLError.uncleanShutdown = error {} else { self.error = error }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if bytes.isEmpty, let error {
                done.fail(error)
            } else {
                done.succeed(String(decoding: bytes, as: UTF8.self))
            }
        }
    }
}

struct RawHTTPError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

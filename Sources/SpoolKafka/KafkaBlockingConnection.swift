#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// A blocking Kafka client over a plain IPv4 socket: one request at a time, answered before
/// the next. For tools (`spool quota`) and tests against a broker process, never a data
/// path. Flexible versions get header v2 (an empty tag section) and their answers' header
/// tag section is skipped.
///
/// ```swift
/// let connection = try KafkaBlockingConnection(host: "127.0.0.1", port: 9092)
/// var body = try connection.call(.describeClientQuotas, version: 0, DescribeClientQuotasRequest())
/// let answer = try DescribeClientQuotasResponse(from: &body, version: 0)
/// ```
public final class KafkaBlockingConnection {
    /// A socket call failed, the connection ended, or an answer was malformed.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let fd: Int32
    private var correlationId: Int32 = 0
    private let clientId: String

    /// Connects to `host` (an IPv4 address) and `port`; a reply not received within
    /// `timeoutSeconds` fails the call.
    public init(host: String = "127.0.0.1", port: Int, clientId: String = "test", timeoutSeconds: Int = 30) throws {
        self.clientId = clientId
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw Failure(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        // A reply to a request that never comes must not hang the test.
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// Sends `body` and returns the response body (after the correlation id).
    public func call<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, _ body: M) throws -> ByteBuffer {
        try send(api, version: version, body)
        var answer = try receive()
        // Response header v1 (flexible, except ApiVersions' which is always v0) ends in a tag section.
        if api.isFlexible(version) && api != .apiVersions {
            var reader = KafkaReader(answer)
            do { try KafkaRequestHeader.skipTagSection(from: &reader) } catch { throw Failure(description: "bad response header: \(error)") }
            answer = reader.buffer
        }
        return answer
    }

    /// Sends a request without waiting for its answer.
    public func send<M: KafkaMessage>(_ api: KafkaApiKey, version: Int16, _ body: M) throws {
        correlationId += 1
        var writer = KafkaWriter()
        writer.writeInt32(0)
        KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: correlationId, clientId: clientId).write(to: &writer)
        body.write(to: &writer, version: version)
        writer.buffer.setInteger(Int32(writer.buffer.readableBytes - 4), at: 0)
        let bytes = Array(writer.buffer.readableBytesView)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
    }

    /// The next response's body; throws when the connection ends first.
    public func receive() throws -> ByteBuffer {
        let size = try read(4).withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(as: Int32.self)) }
        guard size >= 4 && size < 1 << 24 else { throw Failure(description: "response size \(size)") }
        var frame = ByteBuffer(bytes: try read(Int(size)))
        _ = frame.readInteger(as: Int32.self) // correlation id: answers come in order
        return frame
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure(description: "connection ended (recv \(n), errno \(errno))") }
            got += n
        }
        return bytes
    }
}

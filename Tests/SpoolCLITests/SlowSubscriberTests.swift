import Foundation
import SpoolTestSupport
import Testing

/// A raw TCP client that subscribes with `credit` bytes and then either never reads its
/// socket, or reads (and counts) everything the broker sends.
final class RawSubscriber: @unchecked Sendable { // `received` is guarded by `lock`
    let fd: Int32
    private let lock = NSLock()
    private var receivedBytes = 0

    init(port: Int, topic: String, credit: Int, reading: Bool) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw ProcessError("connect failed: \(errno)") }
        // SubscribeRequest{topic=1, partition=2 (0), offset=3 (0), initial_credit_bytes=4}, hand-encoded protobuf.
        var message: [UInt8] = [0x0A, UInt8(topic.utf8.count)] + Array(topic.utf8)
        message += [0x20] + Self.varint(credit)
        var frame: [UInt8] = []
        func u32(_ v: Int) { frame += [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        u32(12 + message.count)
        frame += [1, 0, 0, 9] // REQUEST, no flags, method 9 (Subscribe)
        u32(1)                // stream id
        u32(message.count)
        frame += message
        guard write(fd, frame, frame.count) == frame.count else { throw ProcessError("write failed") }
        if reading {
            let fd = self.fd
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while true {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n <= 0 { return }
                    lock.lock()
                    receivedBytes += n
                    lock.unlock()
                }
            }
        }
    }

    /// Bytes read so far (frame headers and messages included).
    var received: Int {
        lock.lock()
        defer { lock.unlock() }
        return receivedBytes
    }

    static func varint(_ v: Int) -> [UInt8] {
        var v = UInt64(v)
        var out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

@Suite(.serialized) struct SlowSubscriberTests {
    /// The subscriber grants 1 GiB of credit but never reads: the broker must stop at the
    /// socket's write buffer (it only queues file regions, no copies) and keep serving others.
    @Test func aSubscriberThatStopsReadingDoesNotGrowBrokerMemory() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "firehose", "--config", "compression.type=none"])
        let before = broker.residentBytes
        let stalled = try RawSubscriber(port: broker.port, topic: "firehose", credit: 1 << 30, reading: false)
        // 64 MiB of incompressible records.
        let r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "firehose", "--records", "65536",
                                              "--record-size", "1024", "--payload", "random", "--compression", "none"], timeoutSeconds: 120)
        #expect(r.status == 0, "\(r.stderr)")
        // Other clients are served meanwhile (and the consume is the point by which the
        // broker has pushed all it could to the stalled subscriber).
        let c = try broker.spool(["consume", "firehose", "--from", "beginning", "--count", "3", "--format", "%o\\n"])
        #expect(c.stdout == "0\n1\n2\n")
        let after = broker.residentBytes
        #expect(before > 0 && after > 0)
        #expect(after - before < 48 << 20, "broker RSS grew from \(before >> 20) MiB to \(after >> 20) MiB")
        _ = stalled
    }

    /// A subscriber that reads everything but grants only 64 KiB gets 64 KiB (plus at most
    /// one batch), not the 8 MiB in the log: credit, not the socket, bounds what is sent.
    /// (The test above is satisfied by writability alone; this one is not.)
    @Test func aSubscriberThatReadsGetsNoMoreThanItsCredit() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "metered", "--config", "compression.type=none"])
        let r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "metered", "--records", "8192",
                                              "--record-size", "1024", "--payload", "random", "--compression", "none"], timeoutSeconds: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let credit = 64 << 10
        let reader = try RawSubscriber(port: broker.port, topic: "metered", credit: credit, reading: true)
        #expect(eventually { reader.received >= credit }, "got \(reader.received) bytes")
        // Another client's round trip: whatever the broker would push is out by then.
        let c = try broker.spool(["consume", "metered", "--from", "beginning", "--count", "1", "--format", "%o\\n"])
        #expect(c.stdout == "0\n")
        let maxBatch = (1 << 20) + 12 // max.message.bytes
        #expect(reader.received <= credit + maxBatch + 1024, "\(reader.received) bytes sent on \(credit) bytes of credit")
        #expect(reader.received < 4 << 20)
    }
}

import Foundation
import SpoolTestSupport
import Testing

/// A raw blocking TCP socket to the broker, for clients that misbehave on purpose.
final class RawSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw ProcessError("connect failed: \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends all of `bytes` or stops at the first error (the broker closed); returns the bytes sent.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    deinit { close(fd) }
}

/// CPU time (user + system) a process used so far, in clock ticks.
func cpuTicks(_ pid: Int32) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

/// Descriptors a process has open.
func openDescriptors(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count ?? 0
}

@Suite(.serialized) struct AbuseTests {
    /// Writes a broker config file and starts a broker with it.
    static func broker(_ settings: [String: String]) throws -> BrokerProcess {
        let file = NSTemporaryDirectory() + "spool-abuse-" + UUID().uuidString + ".properties"
        try settings.map { "\($0.key)=\($0.value)" }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let directory = NSTemporaryDirectory() + "spool-cli-" + UUID().uuidString
        return try BrokerProcess(arguments: ["broker", "--config", file, "--data-dir", directory, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0"], directory: directory)
    }

    /// With the descriptor limit reached, `accept` fails with EMFILE while connections wait
    /// in the backlog: the broker pauses accepting instead of retrying in a busy loop (which
    /// burned a whole core), and accepts again once descriptors are free. The check counts
    /// the failed accepts (`spool_accept_failures_total`): a paused listener fails about once
    /// per 100 ms pause, a busy loop thousands of times a second, whatever the machine's load.
    @Test func acceptBacksOffWhenOutOfDescriptors() throws {
        let broker = try Self.broker(["max.connections": "1000"])
        let admin = try #require(broker.adminAddress)
        // prlimit(1) (util-linux): Glibc's prlimit(2) wrapper is not visible from Swift.
        func setLimit(_ soft: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            p.arguments = ["--pid", String(broker.pid), "--nofile=\(soft):"]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
        }
        func acceptFailures() throws -> Int {
            let metrics = try String(contentsOf: URL(string: "http://\(admin)/metrics")!, encoding: .utf8)
            return metrics.split(separator: "\n").filter { $0.hasPrefix("spool_accept_failures_total{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
        }
        let failuresBefore = try acceptFailures()
        var original = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &original) // the broker inherited ours
        let began = Date()
        try setLimit(String(openDescriptors(broker.pid) + 2))
        // More connections than descriptors left: the rest wait in the backlog.
        let waiting = try (0..<8).map { _ in try RawSocket(port: broker.port) }
        let start = cpuTicks(broker.pid)
        usleep(1_500_000) // the window: accept fails all along
        let used = cpuTicks(broker.pid) - start
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let share = Double(used) / ticksPerSecond / 1.5
        // Descriptors back: it accepts again and serves.
        try setLimit(String(original.rlim_cur))
        let elapsed = Date().timeIntervalSince(began)
        let r = try broker.spool(["topic", "list"])
        #expect(r.status == 0, "\(r.stderr)")
        let failures = try acceptFailures() - failuresBefore
        let perSecond = Double(failures) / elapsed
        print("acceptBacksOffWhenOutOfDescriptors: \(failures) failed accepts in \(String(format: "%.2f", elapsed)) s (\(Int(perSecond))/s; one per 100 ms pause expected), \(Int(share * 100)) % of a core")
        #expect(failures >= 1, "accept never failed: the descriptor limit did not bite, so nothing was tested")
        #expect(perSecond < 40, "\(failures) failed accepts in \(elapsed) s: the listener retries instead of pausing")
        _ = waiting
        #expect(broker.terminate() == 0)
    }

    /// Many connections each send most of a 16 MiB frame and never finish it: the broker
    /// buffers no more than its inbound budget (the frames that do not fit are refused with
    /// GOAWAY RESOURCE_EXHAUSTED), its memory stays bounded, and another client produces
    /// and consumes meanwhile. Before the budget, 150 such connections took it to 2.3 GB.
    @Test func unfinishedFramesDoNotGrowBrokerMemory() throws {
        let budget = 32 << 20
        let broker = try Self.broker(["max.inbound.buffered.bytes": String(budget), "frame.completion.seconds": "120"])
        _ = try broker.spool(["topic", "create", "t"])
        let before = broker.residentBytes
        let frameBytes = 16 << 20
        var header: [UInt8] = []
        let length = UInt32(frameBytes - 4)
        header += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        header += [1, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0] // REQUEST, Produce, stream 1, empty message
        let body = [UInt8](repeating: 0x5A, count: 15 << 20)
        var sockets: [RawSocket] = []
        var accepted = 0
        for _ in 0..<30 {
            let s = try RawSocket(port: broker.port)
            s.send(header)
            if s.send(body) == body.count { accepted += 1 }
            sockets.append(s)
        }
        let after = broker.residentBytes
        #expect(accepted <= budget / frameBytes + 1, "\(accepted) connections were allowed to buffer 15 MiB each")
        #expect(after - before < budget + (32 << 20), "broker RSS grew from \(before >> 20) MiB to \(after >> 20) MiB")
        let p = try broker.spool(["produce", "t"], stdin: "one\ntwo\n")
        #expect(p.status == 0, "\(p.stderr)")
        let c = try broker.spool(["consume", "t", "--from", "beginning", "--count", "2"])
        #expect(c.stdout == "one\ntwo\n", "\(c.stderr)")
        _ = sockets
        #expect(broker.terminate() == 0)
    }
}

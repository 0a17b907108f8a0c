import Foundation
import NIOCore
import SpoolClient
import SpoolProtocol
import SpoolTestSupport
import Testing

/// A loopback listener that completes TCP connects and then either stays silent or
/// greets like another kind of server.
final class FakeServer: @unchecked Sendable {
    let fd: Int32
    let port: Int
    /// The accepted sockets; shared with the accept thread, which must not hold the server
    /// (its deinit shuts the listening socket down, which ends the thread's `accept`).
    private final class Accepted: @unchecked Sendable {
        var fds: [Int32] = []
        let lock = NSLock()
    }
    private let accepted = Accepted()

    /// `greeting` nil: accept and never answer; otherwise write it to every client.
    init(greeting: String?) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        listen(fd, 16)
        let accepted = self.accepted
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                accepted.lock.lock(); accepted.fds.append(client); accepted.lock.unlock()
                if let greeting { _ = greeting.withCString { write(client, $0, strlen($0)) } }
            }
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        accepted.lock.lock(); accepted.fds.forEach { close($0) }; accepted.lock.unlock()
    }
}

@Suite(.timeLimit(.minutes(2))) struct ConnectionTests {
    @Test func aRefusedConnectionSaysSo() async throws {
        let port = freeLoopbackPort()
        await #expect {
            _ = try await SpoolConnection.connect(host: "127.0.0.1", port: port)
        } throws: { error in
            let e = error as? SpoolClientError
            return e?.code == .connectionRefused && e?.description == "cannot connect to 127.0.0.1:\(port): connection refused"
        }
    }

    @Test func aServerThatNeverAnswersFailsWithinTheHandshakeTimeout() async throws {
        let server = FakeServer(greeting: nil)
        var config = ConnectionConfig(host: "127.0.0.1", port: server.port)
        config.handshakeTimeoutMillis = 500
        config.connectTimeoutMillis = 60_000
        let start = ContinuousClock.now
        await #expect {
            _ = try await SpoolConnection.connect(config)
        } throws: { error in
            let e = error as? SpoolClientError
            return e?.code == .handshakeTimeout && e!.description.contains("no Spool handshake answer within 500 ms")
        }
        // Only the handshake deadline ends the wait (the server never answers); the bound is
        // loose because parallel process-driven suites can hold the test's threads for seconds.
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func anotherKindOfServerIsToldApart() async throws {
        let server = FakeServer(greeting: "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        var config = ConnectionConfig(host: "127.0.0.1", port: server.port)
        config.handshakeTimeoutMillis = 60_000
        let start = ContinuousClock.now
        await #expect {
            _ = try await SpoolConnection.connect(config)
        } throws: { error in
            (error as? SpoolClientError)?.code == .notASpoolBroker
        }
        // Told apart from its first bytes, long before the 60 s handshake timeout.
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func everyCallHasADeadlineAndTheConnectionOutlivesIt() async throws {
        let broker = try BrokerProcess()
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        defer { Task { await connection.close() } }
        try await SpoolAdmin(connection).createTopic("quiet", partitions: 1)
        var request = Spool_V1_FetchRequest()
        // The broker would answer this long poll only after 25 s; the 300 ms deadline must end it long before.
        request.maxWaitMs = 25_000
        request.minBytes = 1
        var p = Spool_V1_FetchPartition()
        p.topic = "quiet"
        p.offset = 0
        request.partitions = [p]
        let start = ContinuousClock.now
        await #expect {
            _ = try await connection.rawCall(.fetch, request, timeoutMillis: 300)
        } throws: { ($0 as? SpoolClientError)?.code == .deadlineExceeded }
        // Generous: a loaded CI machine delays wake-ups, but nowhere near the broker's 25 s.
        #expect(ContinuousClock.now - start < .seconds(15))
        #expect(try await SpoolAdmin(connection).listTopics().map(\.name) == ["quiet"])
    }

    @Test func anOversizedRequestFailsAloneWithoutClosingTheConnection() async throws {
        let dir = NSTemporaryDirectory() + "spool-client-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "max.frame.bytes=65536\n".write(toFile: dir + "/broker.properties", atomically: true, encoding: .utf8)
        let broker = try BrokerProcess(arguments: ["broker", "--data-dir", dir + "/data", "--listen", "127.0.0.1:0", "--config", dir + "/broker.properties"])
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: broker.port)
        defer { Task { await connection.close() } }
        #expect(connection.maxFrameBytes == 65536)
        try await SpoolAdmin(connection).createTopic("big", partitions: 1)
        var request = Spool_V1_ProduceRequest()
        request.topic = "big"
        await #expect {
            _ = try await connection.rawCall(.produce, request, payload: ByteBuffer(repeating: 7, count: 100_000))
        } throws: { ($0 as? SpoolClientError)?.code == .requestTooLarge }
        // The shared connection is still up: the broker never saw the request.
        #expect(try await SpoolAdmin(connection).listTopics().map(\.name) == ["big"])
        #expect(connection.isConnected)
    }

    @Test func callsReconnectAfterTheBrokerRestarts() async throws {
        let first = try BrokerProcess()
        let port = first.port
        let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        try await SpoolAdmin(connection).createTopic("kept", partitions: 2)
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()
        // While the broker is down, a call fails with a retriable error instead of hanging.
        await #expect { _ = try await connection.rawCall(.listTopics, Spool_V1_ListTopicsRequest(), timeoutMillis: 500) } throws: { isRetriable($0) }
        let second = try BrokerProcess(arguments: ["broker", "--data-dir", first.directory, "--listen", "127.0.0.1:\(port)"])
        _ = second
        #expect(try await SpoolAdmin(connection).listTopics().map(\.name) == ["kept"])
    }
}

import Foundation
import SpoolTestSupport
import Testing

/// `spool consume` and the client failures a person sees, against `spool broker` processes.
@Suite struct ConsumeCLITests {
    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    @Test func groupRunsWithACountPrintEveryRecordExactlyOnceOverall() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "t", "--partitions", "4"]).status == 0)
        let input = (0..<100).map { "k\($0):v\($0)" }.joined(separator: "\n") + "\n"
        #expect(try broker.spool(["produce", "t", "--key-separator", ":"], stdin: input).status == 0)
        let describe = try broker.spool(["topic", "describe", "t"])
        let nonEmpty = Self.lines(describe.stdout).filter { $0.first?.isNumber == true }.filter { $0.split(separator: "\t")[2] != "0" }
        #expect(nonEmpty.count >= 3, "keys spread over the partitions: \(describe.stdout)")
        var printed: [String] = []
        for run in 0..<10 {
            let r = try broker.spool(["consume", "t", "--group", "g", "--count", "10", "--offset-reset", "earliest"])
            #expect(r.status == 0, "run \(run): \(r.stderr)")
            #expect(Self.lines(r.stdout).count == 10, "run \(run)")
            printed += Self.lines(r.stdout)
        }
        #expect(printed.sorted() == (0..<100).map { "v\($0)" }.sorted())
        let lag = try broker.spool(["group", "describe", "g"])
        #expect(Self.lines(lag.stdout).dropFirst().allSatisfy { $0.hasSuffix("\t0") }, "nothing left: \(lag.stdout)")
    }

    @Test func failuresSpeakToTheUser() throws {
        let port = freeLoopbackPort()
        var r = try runCommand("spool", ["topic", "list", "--broker", "127.0.0.1:\(port)"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot connect to 127.0.0.1:\(port): connection refused"), "\(r.stderr)")
        // A listener that completes TCP connects and never answers (the kernel's backlog).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listen(fd, 8)
        let silent = Int(UInt16(bigEndian: addr.sin_port))
        let start = Date()
        r = try runCommand("spool", ["topic", "list", "--broker", "127.0.0.1:\(silent)", "--connect-timeout-ms", "700"], timeoutSeconds: 20)
        #expect(r.status != 0)
        #expect(r.stderr.contains("connected to 127.0.0.1:\(silent), but it sent no Spool handshake answer within 700 ms"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 10)
        // A second broker on a taken address.
        let broker = try BrokerProcess()
        r = try runCommand("spool", ["broker", "--data-dir", broker.directory + "-second", "--listen", broker.address])
        defer { try? FileManager.default.removeItem(atPath: broker.directory + "-second") }
        #expect(r.status != 0)
        #expect(r.stderr.contains("address \(broker.address) is already in use"), "\(r.stderr)")
        #expect(!r.stderr.contains("SingleConnectionFailure") && !r.stderr.contains("IOError"))
    }

    @Test func aTailingConsumerSurvivesABrokerRestart() throws {
        let first = try BrokerProcess()
        let address = first.address
        #expect(try first.spool(["topic", "create", "live", "--partitions", "2"]).status == 0)
        #expect(try first.spool(["produce", "live", "--key-separator", ":"], stdin: (0..<50).map { "k\($0):\($0)" }.joined(separator: "\n") + "\n").status == 0)
        let consumer = try SpoolProcess(["consume", "live", "--from", "beginning", "--broker", address])
        #expect(consumer.wait(seconds: 20) { $0.lines.count >= 50 })
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()
        // Same port, same data: the broker comes back while the consumer is tailing.
        let second = try BrokerProcess(arguments: ["broker", "--data-dir", first.directory, "--listen", address])
        #expect(try second.spool(["produce", "live", "--key-separator", ":"], stdin: (50..<100).map { "k\($0):\($0)" }.joined(separator: "\n") + "\n").status == 0)
        let all = consumer.wait(seconds: 30) { $0.lines.count >= 100 }
        #expect(all, "consumer printed \(consumer.lines.count); stderr: \(consumer.stderr)")
        usleep(300_000) // a duplicate would show up right behind
        #expect(consumer.lines.map { Int($0)! }.sorted() == Array(0..<100))
        #expect(consumer.process.isRunning, "still tailing")
        consumer.stop()
    }
}

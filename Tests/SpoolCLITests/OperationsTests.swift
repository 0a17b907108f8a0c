import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SpoolTestSupport
import Testing

/// A real `spool broker` process as an operator sees it: its JSON log, the admin
/// listener, `spool broker info` and `spool group describe` through it.
@Suite struct OperationsTests {
    /// The JSON objects a broker logged (lines of its output that start with `{`).
    static func jsonLines(_ text: String) throws -> [[String: String]] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else {
                throw ProcessError("not a JSON object of strings: \(line)")
            }
            return object
        }
    }

    @Test func jsonLogOfABrokerProcess() throws {
        let dir = NSTemporaryDirectory() + "spool-ops-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try BrokerProcess(arguments: [
            "broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0", "--log-format", "json", "--topic-default", "retention.ms=3600000",
        ])
        #expect(try broker.spool(["topic", "create", "orders", "--partitions", "2"]).status == 0)
        #expect(try broker.spool(["produce", "orders"], stdin: "a\nb\nc\n").status == 0)
        #expect(broker.terminate() == 0)

        let lines = try Self.jsonLines(broker.logText)
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line["ts"]?.hasSuffix("Z") == true && line["level"] != nil && line["logger"] != nil && line["msg"] != nil, "\(line)")
        }
        let messages = lines.map { $0["msg"] ?? "" }
        let started = try #require(lines.first { $0["msg"] == "broker started" })
        #expect(started["level"] == "info" && started["version"]?.isEmpty == false)
        #expect(started["listeners"]?.contains("native=127.0.0.1:\(broker.port)") == true)
        #expect(started["listeners"]?.contains("admin-http=\(broker.adminAddress ?? "?")") == true)
        #expect(started["data_dir"] == URL(fileURLWithPath: dir).standardizedFileURL.path)
        #expect(started["config"]?.contains("retention.ms=3600000") == true && started["config"]?.contains("log.format=json") == true)
        #expect(lines.contains { $0["msg"] == "storage opened" && $0["previous_stop"] == "clean" })
        let created = try #require(lines.first { $0["msg"] == "topic created" })
        #expect(created["topic"] == "orders" && created["partitions"] == "2")
        // Shutdown phases, in order.
        let phases = ["shutdown: stop accepting", "shutdown: draining connections",
                      "shutdown: flushing storage and writing the clean-shutdown marker", "shutdown: storage closed cleanly"]
        let positions = phases.compactMap { messages.firstIndex(of: $0) }
        #expect(positions.count == phases.count && positions == positions.sorted(), "\(messages)")
        // Requests are logged at debug only.
        #expect(!messages.contains("request"))
    }

    @Test func logLevelWarningKeepsInfoOut() throws {
        let broker = try BrokerProcess(arguments: nil)  // text format, info: the baseline
        #expect(broker.terminate() == 0)
        #expect(broker.logText.contains("info spool.broker: broker started"))
        let dir = NSTemporaryDirectory() + "spool-ops-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let quiet = try BrokerProcess(arguments: [
            "broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0",
            "--http-listen", "none", "--log-level", "warning",
        ])
        #expect(quiet.adminAddress == nil)
        #expect(quiet.terminate() == 0)
        #expect(!quiet.logText.contains("broker started") && quiet.logText.contains("stopped cleanly"))
        let bad = try runCommand("spool", ["broker", "--data-dir", dir, "--log-format", "xml"])
        #expect(bad.status != 0 && bad.stderr.contains("log.format must be text or json"))
    }

    @Test func anUncleanRestartLogsRecoveryPerPartition() throws {
        let dir = NSTemporaryDirectory() + "spool-ops-" + UUID().uuidString
        let arguments = ["broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json"]
        let first = try BrokerProcess(arguments: arguments, directory: dir)
        #expect(try first.spool(["topic", "create", "orders", "--partitions", "2"]).status == 0)
        #expect(try first.spool(["produce", "orders", "--partition", "1"], stdin: "a\nb\nc\n").status == 0)
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()

        let second = try BrokerProcess(arguments: arguments, directory: dir)
        #expect(second.terminate() == 0)
        let lines = try Self.jsonLines(second.logText)
        let opened = try #require(lines.first { $0["msg"] == "storage opened" })
        #expect(opened["previous_stop"] == "unclean" && opened["partitions_recovered"] == "2")
        let recovered = lines.filter { $0["msg"] == "partition recovered" }
        #expect(Set(recovered.compactMap { $0["partition"] }) == ["orders-0", "orders-1"])
        let one = try #require(recovered.first { $0["partition"] == "orders-1" })
        #expect((Int(one["bytes_scanned"] ?? "") ?? 0) > 0 && one["bytes_truncated"] == "0" && one["clean"] == "false")
        withExtendedLifetime(first) {}
    }

    @Test func debugLevelLogsRequests() throws {
        let dir = NSTemporaryDirectory() + "spool-ops-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try BrokerProcess(arguments: [
            "broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug",
        ])
        #expect(try broker.spool(["topic", "create", "t"]).status == 0)
        #expect(try broker.spool(["topic", "describe", "nope"]).status != 0)
        #expect(broker.terminate() == 0)
        let requests = try Self.jsonLines(broker.logText).filter { $0["msg"] == "request" && $0["listener"] == "native" }
        #expect(requests.contains { $0["api"] == "createTopic" && $0["level"] == "debug" && $0["error"] == nil && $0["client"]?.contains("127.0.0.1") == true })
        #expect(requests.contains { $0["api"] == "describeTopic" && $0["error"] == "NOT_FOUND" })
    }

    @Test func brokerInfoAndGroupDescribeThroughTheAdminListener() throws {
        let broker = try BrokerProcess()
        let admin = try #require(broker.adminAddress)
        #expect(try broker.spool(["topic", "create", "orders"]).status == 0)
        #expect(try broker.spool(["produce", "orders"], stdin: "a\nb\nc\nd\n").status == 0)
        #expect(try broker.spool(["group", "reset", "billing", "--topic", "orders", "--to", "1"]).status == 0)

        let info = try runCommand("spool", ["broker", "info", "--admin", admin])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("listener\tnative\t127.0.0.1:\(broker.port)\n"))
        #expect(info.stdout.contains("ready\tyes\n") && info.stdout.contains("topics\t1\n"))
        #expect(info.stdout.contains("records\t4 in"))

        let describe = try broker.spool(["group", "describe", "billing", "--admin", admin])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("orders\t0\t1\t4\t3\n"))
        #expect(describe.stdout.contains("state\tEmpty\tgeneration\t0\tprotocol\t-\tmembers\t0"))

        // /metrics of the process is Prometheus text with the topic's counters.
        let metrics = try String(contentsOf: URL(string: "http://\(admin)/metrics")!, encoding: .utf8)
        #expect(metrics.contains(#"spool_records_in_total{topic="orders"} 4"#))
        let unreachable = try runCommand("spool", ["broker", "info", "--admin", "127.0.0.1:1"])
        #expect(unreachable.status != 0 && unreachable.stderr.contains("cannot reach the admin listener at 127.0.0.1:1"))
        #expect(broker.terminate() == 0)
    }

    /// `http.ssl.*` and `http.auth.enabled` from a config file: the banner says https, curl
    /// trusting the test CA gets 401 without a login, 200 with a `spool user`'s password,
    /// and /metrics stays open.
    @Test func adminListenerOverTLSWithALogin() throws {
        let dir = NSTemporaryDirectory() + "spool-ops-tls-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = dir + "/certs"
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: "/bin/bash")
        gen.arguments = [Executables.root.appendingPathComponent("tools/gen-certs.sh").path, certs]
        gen.standardOutput = FileHandle.nullDevice
        try gen.run()
        gen.waitUntilExit()
        #expect(gen.terminationStatus == 0)
        #expect(try runCommand("spool", ["user", "create", "alice", "--password-stdin", "--data-dir", dir + "/data"], stdin: "alice-pw\n").status == 0)
        let config = dir + "/spool.properties"
        try """
            http.ssl.certificate=\(certs)/broker.pem
            http.ssl.key=\(certs)/broker.key
            http.auth.enabled=true

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let broker = try BrokerProcess(arguments: ["broker", "--config", config, "--data-dir", dir + "/data", "--listen", "127.0.0.1:0"])
        defer { _ = broker.terminate() }
        let banner = try #require(broker.logText.range(of: #"admin https://[^/]+/"#, options: .regularExpression))
        let admin = String(broker.logText[banner].dropFirst("admin https://".count).dropLast())
        func curl(_ path: String, _ extra: [String] = []) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", certs + "/ca.pem"]
                + extra + ["https://\(admin)\(path)"]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            process.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(try curl("/v1/broker") == "401")
        #expect(try curl("/v1/broker", ["-u", "alice:wrong"]) == "401")
        #expect(try curl("/v1/broker", ["-u", "alice:alice-pw"]) == "200")
        #expect(try curl("/metrics") == "200")
        #expect(try curl("/health") == "200")
        #expect(broker.terminate() == 0)
        #expect(broker.logText.contains("listener=admin-http") && broker.logText.contains("reason=wrong password"))
    }
}

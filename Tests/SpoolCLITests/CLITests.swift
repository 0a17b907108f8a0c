import Foundation
import SpoolTestSupport
import Testing

/// The `spool` executable against a real `spool broker` process.
@Suite(.serialized) struct CLITests {
    @Test func topicLifecycle() throws {
        let broker = try BrokerProcess()
        var r = try broker.spool(["topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000"])
        #expect(r.status == 0 && r.stdout.contains("created topic orders with 3 partitions"), "\(r.stderr)")
        r = try broker.spool(["topic", "list"])
        #expect(r.stdout == "orders\t3\n")
        r = try broker.spool(["topic", "describe", "orders"])
        #expect(r.stdout.contains("retention.ms=3600000\n"))
        #expect(r.stdout.contains("segment.bytes=1073741824  (default)"))
        #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("2\t0\t0\t") }.count == 1)
        r = try broker.spool(["topic", "create", "orders"])
        #expect(r.status != 0 && r.stderr.contains("ALREADY_EXISTS"))
        r = try broker.spool(["topic", "create", "bad/name"])
        #expect(r.status != 0 && r.stderr.contains("INVALID_ARGUMENT"))
        r = try broker.spool(["topic", "create", "x", "--config", "nonsense"])
        #expect(r.status != 0 && r.stderr.contains("key=value"))
        // One broker keeps one replica: RF 2 is refused with a sentence, RF 1 is fine, and the
        // describe of a single broker's topic has no replication columns.
        r = try broker.spool(["topic", "create", "wide", "--replication-factor", "2"])
        #expect(r.status != 0 && r.stderr.contains("INVALID_ARGUMENT") && r.stderr.contains("replication factor 2 is not possible"), "\(r.stderr)")
        r = try broker.spool(["topic", "create", "narrow", "--replication-factor", "1"])
        #expect(r.status == 0 && r.stdout == "created topic narrow with 1 partition\n", "\(r.stdout) \(r.stderr)")
        #expect(try broker.spool(["topic", "describe", "narrow"]).stdout.contains("partition\tstart\tend\tsize_bytes\tsegments\n"))
        _ = try broker.spool(["topic", "delete", "narrow"])
        r = try broker.spool(["topic", "create", "x", "--replication-factor", "0"])
        #expect(r.status != 0 && r.stderr.contains("--replication-factor must be at least 1"))
        r = try broker.spool(["topic", "alter", "orders", "--config", "retention.bytes=1000000"])
        #expect(r.status == 0)
        #expect(try broker.spool(["topic", "describe", "orders"]).stdout.contains("retention.bytes=1000000\n"))
        r = try broker.spool(["topic", "recover", "orders"])
        #expect(r.status == 0 && r.stdout == "topic orders: no partition was stopped\n", "\(r.stdout) \(r.stderr)")
        r = try broker.spool(["topic", "recover", "missing"])
        #expect(r.status != 0 && r.stderr.contains("NOT_FOUND"))
        r = try broker.spool(["topic", "delete", "orders"])
        #expect(r.status == 0)
        #expect(try broker.spool(["topic", "list"]).stdout.isEmpty)
        r = try broker.spool(["topic", "describe", "orders"])
        #expect(r.status != 0 && r.stderr.contains("NOT_FOUND"))
    }

    @Test func produceAndConsumeWithKeysFormatsAndPositions() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "events", "--partitions", "2"])
        let input = (0..<20).map { "user-\($0 % 4):event-\($0)" }.joined(separator: "\n") + "\n"
        var r = try broker.spool(["produce", "events", "--key-separator", ":", "--acks", "all", "--print-offsets", "--compression", "gzip"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let acks = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map { Int($0)! } }
        #expect(acks.count == 20)
        // Offsets per partition count up in input order.
        for p in 0..<2 {
            let offsets = acks.filter { $0[0] == p }.map { $0[1] }
            #expect(offsets == Array(0..<offsets.count))
        }
        r = try broker.spool(["consume", "events", "--from", "beginning", "--exit-at-end", "--format", "%t %p %o %k=%v\\n"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 20)
        #expect(Set(lines.map { String($0.split(separator: "=")[1]) }) == Set((0..<20).map { "event-\($0)" }))
        for (i, ack) in acks.enumerated() {
            #expect(lines.contains { $0 == "events \(ack[0]) \(ack[1]) user-\(i % 4)=event-\(i)" })
        }
        // Default format: values, one per line. --count stops early.
        r = try broker.spool(["consume", "events", "--partition", String(acks[0][0]), "--from", "0", "--count", "2"])
        #expect(r.stdout.split(separator: "\n").count == 2)
        // --from OFFSET in one partition.
        r = try broker.spool(["consume", "events", "--partition", "0", "--from", "1", "--exit-at-end", "--format", "%o\\n"])
        let zeroCount = acks.filter { $0[0] == 0 }.count
        #expect(r.stdout.split(separator: "\n").map { Int($0)! } == Array(1..<zeroCount))
        // --from @timestamp: everything was produced after 2020.
        r = try broker.spool(["consume", "events", "--from", "@1577836800000", "--exit-at-end"])
        #expect(r.stdout.split(separator: "\n").count == 20)
        r = try broker.spool(["consume", "events", "--from", "@99999999999999", "--exit-at-end"])
        #expect(r.stdout.isEmpty)
    }

    @Test func groupsCommitResumeDescribeAndReset() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "g", "--partitions", "2"])
        _ = try broker.spool(["produce", "g"], stdin: (0..<10).map(String.init).joined(separator: "\n") + "\n")
        var r = try broker.spool(["consume", "g", "--group", "readers", "--from", "beginning", "--count", "4"])
        #expect(r.stdout.split(separator: "\n").count == 4)
        r = try broker.spool(["consume", "g", "--group", "readers", "--exit-at-end"])
        #expect(r.stdout.split(separator: "\n").count == 6, "resumes after the 4 already read: \(r.stdout)")
        r = try broker.spool(["group", "list"])
        #expect(r.stdout == "readers\n")
        r = try broker.spool(["group", "describe", "readers"])
        #expect(r.stdout.contains("topic\tpartition\tcommitted\tlog_end\tlag"))
        #expect(r.stdout.split(separator: "\n").dropFirst().allSatisfy { $0.hasSuffix("\t0") }, "no lag: \(r.stdout)")
        r = try broker.spool(["group", "reset", "readers", "--topic", "g", "--to", "beginning"])
        #expect(r.status == 0)
        r = try broker.spool(["consume", "g", "--group", "readers", "--exit-at-end"])
        #expect(r.stdout.split(separator: "\n").count == 10)
        r = try broker.spool(["group", "describe", "nobody"])
        #expect(r.status != 0 && r.stderr.contains("no committed offsets"))
        r = try broker.spool(["group", "reset", "readers", "--topic", "g", "--to", "sideways"])
        #expect(r.status != 0 && r.stderr.contains("--to must be"))
    }

    @Test func badArgumentsGiveMessagesAndNonZeroExits() throws {
        for args in [["produce", "t", "--acks", "2"], ["produce", "t", "--compression", "brotli"], ["consume", "t", "--from", "yesterday"],
                     ["consume", "t", "--format", "%q"], ["topic", "list", "--broker", "nohost"], ["topic", "create", "t", "--partitions", "0"],
                     ["no-such-command"]] {
            let r = try runCommand("spool", args)
            #expect(r.status != 0, "\(args)")
            #expect(!r.stderr.isEmpty, "\(args) must explain itself")
        }
        // An unreachable broker is a clear message too.
        let r = try runCommand("spool", ["topic", "list", "--broker", "127.0.0.1:1"])
        #expect(r.status != 0 && r.stderr.contains("cannot connect to 127.0.0.1:1: connection refused"))
        // Producing to a missing topic fails and says so.
        let broker = try BrokerProcess()
        let p = try broker.spool(["produce", "missing"], stdin: "x\n")
        #expect(p.status != 0 && p.stderr.contains("NOT_FOUND"))
    }

    /// `--broker` takes a list: the first broker that answers is asked (here after a dead address).
    @Test func aBrokerListBootstrapsFromTheFirstThatAnswers() throws {
        let broker = try BrokerProcess()
        let list = "127.0.0.1:\(freeLoopbackPort()),\(broker.address)"
        var r = try runCommand("spool", ["topic", "create", "listed", "--partitions", "2", "--broker", list])
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["produce", "listed", "--acks", "all", "--broker", list], stdin: "a\nb\nc\n")
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["consume", "listed", "--from", "beginning", "--exit-at-end", "--broker", list])
        #expect(r.status == 0 && Set(r.stdout.split(separator: "\n")) == ["a", "b", "c"], "\(r.stdout) \(r.stderr)")
        r = try runCommand("spool", ["topic", "list", "--broker", "\(broker.address),nohost"])
        #expect(r.status != 0 && r.stderr.contains("--broker must be HOST:PORT or a list"))
        let dead = "127.0.0.1:\(freeLoopbackPort())"
        r = try runCommand("spool", ["topic", "list", "--broker", dead])
        #expect(r.status != 0 && r.stderr.contains("cannot connect to \(dead)"))
    }

    @Test func brokerShutsDownCleanlyOnSigterm() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "t"])
        _ = try broker.spool(["produce", "t", "--acks", "1"], stdin: "a\nb\n")
        #expect(broker.terminate() == 0)
        #expect(broker.logText.contains("stopped cleanly"))
        #expect(FileManager.default.fileExists(atPath: broker.directory + "/.clean-shutdown"))
    }

    @Test func spoolPerfRunsAndReportsJSON() throws {
        let broker = try BrokerProcess()
        var r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "perf", "--records", "5000",
                                              "--record-size", "100", "--partitions", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try JSONSerialization.jsonObject(with: Data(last.utf8)) as! [String: Any]
        #expect(json["records"] as? Int == 5000)
        #expect(json["bytes"] as? Int == 500_000)
        for key in ["seconds", "records_per_sec", "mb_per_sec"] { #expect(json[key] != nil) }
        let latency = try #require(json["latency_ms"] as? [String: Any])
        #expect(Set(latency.keys) == ["avg", "p50", "p95", "p99", "p99_9", "max"])
        r = try runCommand("spool-perf", ["consume", "--broker", broker.address, "--topic", "perf", "--records", "5000", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"records\":5000"))
        r = try runCommand("spool-perf", ["e2e", "--broker", broker.address, "--topic", "lat", "--records", "500", "--throughput", "1000", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"records\":500"))
        r = try runCommand("spool-perf", ["produce", "--topic", "x", "--records", "0"])
        #expect(r.status != 0 && r.stderr.contains("--records"))
    }
}

@Suite struct BrokerConfigFileTests {
    @Test func aConfigFileSetsBrokerAndTopicDefaults() throws {
        let dir = NSTemporaryDirectory() + "spool-conf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/spool.properties"
        try """
        # a comment
        data.dir=\(dir)/data
        listen=127.0.0.1:0
        kafka.listen=127.0.0.1:0
        auto.create.topics.enable=false
        http.listen=127.0.0.1:0
        default.partitions=4
        retention.ms=123456   # a topic default
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let broker = try BrokerProcess(arguments: ["broker", "--config", file, "--topic-default", "segment.bytes=1048576", "--kafka-listen", "127.0.0.1:0"])
        _ = try broker.spool(["topic", "create", "t"])
        let d = try broker.spool(["topic", "describe", "t"])
        #expect(d.stdout.contains("partitions 4"))
        #expect(d.stdout.contains("retention.ms=123456"))
        #expect(d.stdout.contains("segment.bytes=1048576"))
        #expect(FileManager.default.fileExists(atPath: dir + "/data/topics.meta"))
        #expect(broker.logText.contains("Kafka clients: "))
    }

    @Test func theKafkaListenerCanBeTurnedOff() throws {
        let dir = NSTemporaryDirectory() + "spool-conf-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try BrokerProcess(arguments: ["broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "none"])
        _ = try broker.spool(["topic", "list"])
        #expect(!broker.logText.contains("Kafka clients"))
    }

    @Test func badConfigFilesAreRejectedWithAMessage() throws {
        let dir = NSTemporaryDirectory() + "spool-conf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (content, message) in [("nonsense.key=1", "unknown setting"), ("just words", "expected key=value"),
                                   ("retention.ms=soon", "retention.ms"), ("listen=nowhere", "HOST:PORT"),
                                   ("kafka.listen=nowhere", "kafka.listen"), ("auto.create.topics.enable=maybe", "true or false")] {
            let file = dir + "/bad.properties"
            try content.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try runCommand("spool", ["broker", "--config", file])
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(content): \(r.stderr)")
        }
        let r = try runCommand("spool", ["broker", "--config", dir + "/missing.properties"])
        #expect(r.status != 0 && r.stderr.contains("cannot read"))
    }
}

@Suite struct ToolCommandTests {
    @Test func debugDumpPrintsTheBatchesOfASegment() throws {
        let broker = try BrokerProcess()
        _ = try broker.spool(["topic", "create", "d"])
        _ = try broker.spool(["produce", "d", "--acks", "all", "--compression", "gzip"], stdin: "one\ntwo\nthree\n")
        let r = try runCommand("spool", ["debug", "dump", "--records", broker.directory + "/d-0/00000000000000000000.log"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("baseOffset 0 lastOffset 2 count 3"))
        #expect(r.stdout.contains("codec gzip"))
        #expect(r.stdout.contains("value three"))
        // A damaged file is reported with its position and a non-zero exit.
        let damaged = broker.directory + "/damaged.log"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: broker.directory + "/d-0/00000000000000000000.log"))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let bad = try runCommand("spool", ["debug", "dump", damaged])
        #expect(bad.status != 0 && bad.stderr.contains("badCRC"))
        let missing = try runCommand("spool", ["debug", "dump", broker.directory + "/nope.log"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot read"))
    }

    @Test func demoBuildsAndReadsEveryCodec() throws {
        let r = try runCommand("spool", ["demo", "--records", "200"])
        #expect(r.status == 0)
        for codec in ["none", "gzip", "lz4"] { #expect(r.stdout.contains("\n\(codec) ")) }
        #expect(try runCommand("spool", ["demo", "--records", "0"]).status != 0)
    }
}

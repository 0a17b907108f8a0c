import Foundation
import SpoolTestSupport
import Testing

/// Offsets, formats and headers as kcat users expect them, against a `spool broker` process.
@Suite struct OffsetsCLITests {
    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// Partition 0 holds 10 records ("a0"…"a9"), partition 1 holds 3 ("b0"…"b2").
    static func uneven() throws -> BrokerProcess {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "u", "--partitions", "2"]).status == 0)
        #expect(try broker.spool(["produce", "u", "--partition", "0"], stdin: (0..<10).map { "a\($0)\n" }.joined()).status == 0)
        #expect(try broker.spool(["produce", "u", "--partition", "1"], stdin: (0..<3).map { "b\($0)\n" }.joined()).status == 0)
        return broker
    }

    @Test func fromAnOffsetAppliesPerPartitionWithTheResetPolicy() throws {
        let broker = try Self.uneven()
        // Offset 5: partition 0 from a5; partition 1 is shorter and follows --offset-reset.
        var r = try broker.spool(["consume", "u", "--from", "5", "--exit-at-end", "--offset-reset", "earliest"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.lines(r.stdout).sorted() == ["a5", "a6", "a7", "a8", "a9", "b0", "b1", "b2"])
        r = try broker.spool(["consume", "u", "--from", "5", "--exit-at-end"]) // default: latest
        #expect(Self.lines(r.stdout).sorted() == ["a5", "a6", "a7", "a8", "a9"])
        r = try broker.spool(["consume", "u", "--from", "5", "--exit-at-end", "--offset-reset", "error"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("offset 5 is outside the log of u-1, which holds offsets 0–2"), "\(r.stderr)")
        #expect(!r.stderr.contains("..<"))
    }

    @Test func fromMinusNReadsTheLastNOfEachPartition() throws {
        let broker = try Self.uneven()
        let r = try broker.spool(["consume", "u", "--from", "-2", "--exit-at-end"])
        #expect(Self.lines(r.stdout).sorted() == ["a8", "a9", "b1", "b2"])
        let all = try broker.spool(["consume", "u", "--from=-50", "--exit-at-end"])
        #expect(Self.lines(all.stdout).count == 13, "never before the log's start")
    }

    @Test func fromStoredResumesTheGroup() throws {
        let broker = try Self.uneven()
        #expect(try broker.spool(["group", "reset", "g", "--topic", "u", "--to", "8", "--partition", "0"]).status == 0)
        let r = try broker.spool(["consume", "u", "--group", "g", "--from", "stored", "--offset-reset", "earliest", "--exit-at-end"])
        #expect(Self.lines(r.stdout).sorted() == ["a8", "a9", "b0", "b1", "b2"])
        let bad = try runCommand("spool", ["consume", "u", "--from", "stored"])
        #expect(bad.status != 0 && bad.stderr.contains("--from stored needs --group"))
    }

    @Test func groupResetShiftsDatesDryRunsAndClamps() throws {
        let broker = try Self.uneven()
        var r = try broker.spool(["group", "reset", "g", "--topic", "u", "--to", "end"])
        #expect(r.status == 0)
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--shift-by", "-4", "--dry-run"])
        #expect(r.stdout.contains("u\t0\t10\t6") && r.stdout.contains("u\t1\t3\t0") && r.stdout.contains("dry run"), "\(r.stdout)")
        #expect(r.stderr.contains("offset -1 is outside the log"), "clamped, and said so: \(r.stderr)")
        var d = try broker.spool(["group", "describe", "g"])
        #expect(d.stdout.contains("u\t0\t10\t10\t0"), "the dry run committed nothing: \(d.stdout)")
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--shift-by", "-4"])
        d = try broker.spool(["group", "describe", "g"])
        #expect(d.stdout.contains("u\t0\t6\t10\t4") && d.stdout.contains("u\t1\t0\t3\t3"), "\(d.stdout)")
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--to", "50", "--strict"])
        #expect(r.status != 0 && r.stderr.contains("offset 50 is outside the log of u-0, which holds offsets 0–9"), "\(r.stderr)")
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--to-datetime", "2000-01-01T00:00:00Z"])
        d = try broker.spool(["group", "describe", "g"])
        #expect(d.stdout.contains("u\t0\t0\t10\t10"), "every record is newer than 2000: \(d.stdout)")
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--to-datetime", "2999-01-01T00:00:00Z"])
        d = try broker.spool(["group", "describe", "g"])
        #expect(d.stdout.contains("u\t0\t10\t10\t0"), "nothing is newer than 2999: \(d.stdout)")
        r = try broker.spool(["group", "reset", "g", "--topic", "u", "--to-datetime", "yesterday"])
        #expect(r.status != 0 && r.stderr.contains("ISO 8601"))
    }

    @Test func headersLengthsAndNullKeys() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "h"]).status == 0)
        let p = try broker.spool(["produce", "h", "--key-separator", ":", "--header", "source=test", "--header", "n=1"], stdin: "k:value\n:empty-key\nno-key\n")
        #expect(p.status == 0, "\(p.stderr)")
        let r = try broker.spool(["consume", "h", "--from", "beginning", "--exit-at-end", "--format", "%K %S [%k] %h %v\\n", "--print-null"])
        #expect(Self.lines(r.stdout) == [
            "1 5 [k] source=test,n=1 value",
            "0 9 [] source=test,n=1 empty-key",
            "-1 6 [NULL] source=test,n=1 no-key",
        ])
    }

    @Test func versionIsPrinted() throws {
        let r = try runCommand("spool", ["--version"])
        #expect(r.status == 0 && r.stdout.first?.isNumber == true, "\(r.stdout)")
    }

    @Test func printOffsetsFollowsTheInputOrderAsAcknowledged() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "o", "--partitions", "3"]).status == 0)
        let input = (0..<3000).map { "k\($0 % 7):\($0)\n" }.joined()
        let r = try broker.spool(["produce", "o", "--key-separator", ":", "--print-offsets", "--max-unacknowledged", "16"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let printed = Self.lines(r.stdout)
        #expect(printed.count == 3000)
        // Each line's partition/offset names the record of that input line.
        let consumed = try broker.spool(["consume", "o", "--from", "beginning", "--exit-at-end", "--format", "%p %o %v\\n"])
        var valueAt: [String: String] = [:]
        for line in Self.lines(consumed.stdout) {
            let parts = line.split(separator: " ")
            valueAt["\(parts[0]) \(parts[1])"] = String(parts[2])
        }
        #expect(printed.enumerated().allSatisfy { valueAt[$0.element] == String($0.offset) })
    }
}

@Suite struct ProduceCLITests {
    @Test func printOffsetsAppearAsRecordsAreAcknowledgedNotAtTheEnd() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "live"]).status == 0)
        let producer = try SpoolProcess(["produce", "live", "--print-offsets", "--broker", broker.address])
        producer.write("first\n")
        // Standard input is still open: the offset must show up anyway.
        #expect(producer.wait(seconds: 10) { $0.lines == ["0 0"] }, "stdout: \(producer.stdout) stderr: \(producer.stderr)")
        producer.write("second\n")
        #expect(producer.wait(seconds: 10) { $0.lines == ["0 0", "0 1"] })
        producer.closeInput()
        #expect(producer.waitForExit(seconds: 10) == 0)
    }
}

@Suite struct TopicAlterCLITests {
    @Test func alterPartitionsGrowsATopicAndNeverShrinksIt() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "grow", "--partitions", "2"]).status == 0)
        var r = try broker.spool(["topic", "alter", "grow", "--partitions", "4"])
        #expect(r.status == 0 && r.stdout.contains("now has 4 partitions (was 2)"), "\(r.stdout) \(r.stderr)")
        #expect(try broker.spool(["produce", "grow", "--partition", "3"], stdin: "late\n").status == 0)
        r = try broker.spool(["consume", "grow", "--partition", "3", "--from", "beginning", "--exit-at-end"])
        #expect(r.stdout == "late\n")
        r = try broker.spool(["topic", "alter", "grow", "--partitions", "3"])
        #expect(r.status != 0 && r.stderr.contains("has 4 partitions; --partitions must be more than that"), "\(r.stderr)")
        // The new partitions survive a restart.
        #expect(broker.terminate() == 0)
        let again = try BrokerProcess(arguments: ["broker", "--data-dir", broker.directory, "--listen", "127.0.0.1:0"])
        r = try again.spool(["consume", "grow", "--partition", "3", "--from", "beginning", "--exit-at-end"])
        #expect(r.stdout == "late\n", "\(r.stderr)")
    }
}

@Suite struct ProduceMemoryTests {
    /// Peak resident memory of a live process, in bytes.
    static func peakResidentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    @Test func producingALargeInputKeepsMemoryBounded() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "big", "--partitions", "2"]).status == 0)
        let producer = try SpoolProcess(["produce", "big", "--broker", broker.address])
        // 600,000 records of ~60 bytes (36 MB): before the bound, memory grew with the input
        // (about 130 MB here); now it stays near the process's baseline.
        let chunk = (0..<10_000).map { "{\"n\":\($0),\"user\":\"u\($0 % 977)\",\"action\":\"click\",\"pad\":\"xxxxxxxx\"}\n" }.joined()
        for _ in 0..<60 { producer.write(chunk) }
        let acknowledged = producer.wait(seconds: 120) { _ in
            (try? broker.spool(["topic", "describe", "big"]).stdout)
                .map { $0.split(separator: "\n").filter { $0.first?.isNumber == true }.reduce(0) { $0 + Int($1.split(separator: "\t")[2])! } } == 600_000
        }
        #expect(acknowledged)
        let peak = Self.peakResidentBytes(producer.process.processIdentifier)
        producer.closeInput()
        #expect(producer.waitForExit(seconds: 30) == 0, "\(producer.stderr)")
        #expect(peak > 0 && peak < 90 << 20, "peak RSS \(peak >> 20) MiB")
    }
}

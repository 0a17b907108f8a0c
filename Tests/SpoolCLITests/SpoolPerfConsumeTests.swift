import Foundation
import SpoolTestSupport
import Testing

/// `spool-perf consume` against a `spool broker` process.
@Suite struct SpoolPerfConsumeTests {
    static func json(_ stdout: String) throws -> [String: Any] {
        let last = try #require(stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    @Test func everyApiCountsEveryRecordAndReportsFetchRatesWithoutLatency() throws {
        let broker = try BrokerProcess()
        var r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "perf", "--records", "20000",
                                              "--record-size", "100", "--partitions", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        for api in ["records", "poll", "batches"] {
            r = try runCommand("spool-perf", ["consume", "--broker", broker.address, "--topic", "perf", "--records", "20000", "--api", api, "--json"])
            #expect(r.status == 0, "\(api): \(r.stderr)")
            let json = try Self.json(r.stdout)
            #expect(json["records"] as? Int == 20000, "\(api)")
            for key in ["records_per_sec", "mb_per_sec", "fetch_ms", "fetch_records_per_sec", "fetch_mb_per_sec"] { #expect(json[key] != nil, "\(key)") }
            #expect(!r.stdout.contains("latency"), "no latency columns it does not measure")
        }
        #expect(((try Self.json(r.stdout))["bytes"] as? Int ?? 0) > 0)
    }

    @Test func aTimedOutRunReportsTheRateWhileDataFlowed() throws {
        let broker = try BrokerProcess()
        var r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "short", "--records", "3000", "--record-size", "100"])
        #expect(r.status == 0)
        r = try runCommand("spool-perf", ["consume", "--broker", broker.address, "--topic", "short", "--records", "100000", "--timeout", "3", "--json"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("only 3000 of 100000 records arrived within 3 s"), "\(r.stderr)")
        let json = try Self.json(r.stdout)
        #expect(json["records"] as? Int == 3000)
        #expect((json["seconds"] as? Double ?? 99) < 2.5, "the rate covers the time data flowed, not the timeout: \(json)")
    }

    @Test func itNeverCreatesATopicItOnlyReads() throws {
        let broker = try BrokerProcess()
        let r = try runCommand("spool-perf", ["consume", "--broker", broker.address, "--topic", "absent", "--records", "10"])
        #expect(r.status != 0 && r.stderr.contains("topic absent does not exist"), "\(r.stderr)")
        #expect(try broker.spool(["topic", "list"]).stdout.isEmpty)
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import SpoolAdminHTTP
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Synchronization
import Testing

/// Background tasks that fail (retention, offset expiry, offsets-log compaction) are
/// logged, counted in metrics, and make the broker degraded in `/ready`, `/v1/broker`
/// and the admin API once they fail three runs in a row; one good run clears it.
@Suite struct MaintenanceFailureTests {
    /// The log lines a broker wrote.
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// Keeps every log message (level, text and metadata) the broker writes.
    struct CapturingLogHandler: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let rendered = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("\(level) \(message) \(rendered)")
        }
    }

    /// A broker over `io` whose log lines land in the returned box.
    static func broker(io: InjectedFaultsIO, configure: (inout BrokerConfig) -> Void = { _ in }) throws -> (TestBroker, Lines) {
        let lines = Lines()
        let logger = Logger(label: "spool.broker") { _ in CapturingLogHandler(lines: lines) }
        return (try TestBroker(io: io, logger: logger, configure: configure), lines)
    }

    func get(_ address: String, _ path: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://\(address)\(path)")!)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test func retentionThatKeepsFailingIsLoggedCountedAndMakesTheBrokerDegraded() async throws {
        let io = InjectedFaultsIO()
        let (t, lines) = try Self.broker(io: io)
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("old", partitions: 1, configs: ["segment.bytes": "1024", "retention.bytes": "1"])
        // Every batch (a 1,000-byte record) fills a segment: 6 produces leave 5 closed segments.
        for _ in 0..<6 { try await t.produce("old", values: [[UInt8](repeating: 7, count: 1_000)]) }
        #expect(try t.broker.storage.partition(TopicPartition("old", 0)).segmentCount == 6)

        io.failRemovals(of: ".log")
        for run in 1...3 {
            t.broker.storage.runRetention()
            let status = t.broker.events.maintenance.all.first { $0.task == .retention }!
            #expect(status.consecutiveFailures == run)
            #expect(t.api.degraded().isEmpty == (run < MaintenanceHealth.persistentFailuresMin))
        }
        let degraded = t.api.degraded()
        #expect(degraded.count == 1 && degraded[0].hasPrefix("retention failed 3 times in a row") && degraded[0].contains("old-0"), "\(degraded)")
        #expect(t.api.brokerInfo().degraded == degraded)
        let scraped = t.scrape()
        #expect(TestBroker.value(scraped, #"spool_maintenance_failures_total{task="retention"}"#) == 3)
        #expect(TestBroker.value(scraped, #"spool_maintenance_failing_runs{task="retention"}"#) == 3)
        let logged = lines.all
        #expect(logged.filter { $0.hasPrefix("error retention failed") && $0.contains("partition=old-0") }.count == 3, "\(logged)")
        #expect(logged.contains { $0.hasPrefix("error broker degraded") && $0.contains("task=retention") })

        // /ready stays 200 (the broker serves) and says what is degraded.
        let listener = try AdminHTTPListener(exporter: t.exporter, host: "127.0.0.1", port: 0, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            let address = await listener.boundAddress()
            listener.attach(t.api)
            let ready = try await get(address, "/ready")
            #expect(ready.status == 200 && ready.body.hasPrefix("ready, degraded\n") && ready.body.contains("degraded: retention failed 3 times"), "\(ready.body)")
            let info = try await get(address, "/v1/broker")
            #expect(info.body.contains(#""degraded":["retention failed 3 times in a row"#), "\(info.body)")

            // Once removals work again, the next run clears it.
            io.failRemovals(of: nil)
            t.broker.storage.runRetention()
            #expect(t.api.degraded().isEmpty)
            #expect(try await get(address, "/ready").body == "ready\n")
            #expect(TestBroker.value(t.scrape(), #"spool_maintenance_failing_runs{task="retention"}"#) == 0)
            #expect(TestBroker.value(t.scrape(), #"spool_maintenance_failures_total{task="retention"}"#) == 3)
            group.cancelAll()
        }
    }

    @Test func offsetsCompactionThatFailsIsReportedAndTheCommitsGoOn() async throws {
        let io = InjectedFaultsIO()
        let (t, lines) = try Self.broker(io: io) { $0.storage.offsetsCompactionMinBytes = 1 }
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("c", partitions: 1)
        try await t.produce("c", values: [[1], [2], [3]])
        io.failWrites(to: "consumer-offsets.log.tmp")
        for offset in Int64(1)...3 {
            let refused = try await t.broker.commitOffsets(group: "g", [TopicPartition("c", 0): (offset, "")])
            #expect(refused.isEmpty, "a failed compaction leaves the old log going: commits succeed")
        }
        let status = t.broker.events.maintenance.all.first { $0.task == .offsetsCompaction }!
        #expect(status.consecutiveFailures >= 3, "\(status)")
        #expect(t.api.degraded().contains { $0.hasPrefix("offsets_compaction failed") })
        #expect((TestBroker.value(t.scrape(), #"spool_maintenance_failures_total{task="offsets_compaction"}"#) ?? 0) >= 3)
        #expect(lines.all.contains { $0.hasPrefix("error committed-offsets compaction failed") && $0.contains("store_stopped=false") })
        #expect(try t.broker.committedOffsets(group: "g").first?.offset == 3)

        io.failWrites(to: nil)
        _ = try await t.broker.commitOffsets(group: "g", [TopicPartition("c", 0): (4, "")])
        #expect(!t.api.degraded().contains { $0.hasPrefix("offsets_compaction") }, "a compaction that worked clears it")
    }

    @Test func offsetExpiryThatFailsIsReported() async throws {
        let io = InjectedFaultsIO()
        let (t, lines) = try Self.broker(io: io) {
            $0.groups.offsetsRetentionMillis = 0
            $0.groups.offsetsRetentionCheckIntervalMillis = 0   // run by hand below
        }
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("e", partitions: 1)
        try await t.produce("e", values: [[1]])
        _ = try await t.broker.commitOffsets(group: "idle", [TopicPartition("e", 0): (1, "")])
        io.failWrites(to: "consumer-offsets.log")
        for _ in 0..<3 { #expect(t.broker.groups.expireOffsets().isEmpty) }
        #expect(t.api.degraded().contains { $0.hasPrefix("offset_expiry failed 3 times in a row") && $0.contains("group idle") }, "\(t.api.degraded())")
        #expect(TestBroker.value(t.scrape(), #"spool_maintenance_failures_total{task="offset_expiry"}"#) == 3)
        #expect(lines.all.contains { $0.hasPrefix("error committed offsets could not be expired") && $0.contains("group=idle") })
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import SpoolBroker
import SpoolStorage
import SpoolTestSupport
import Testing

@testable import SpoolKafka

/// OffsetCommit through the Kafka listener of a real `spool broker` process, committed as
/// kafka-python's commit() does (one request, its answer, then the next), under the
/// default `offsets.flush.ms` policy: answered once written, not per fsync.
@Suite struct CommitDurabilityTests {
    static let topic = "c"

    /// The broker's Kafka port, from its banner.
    static func kafkaPort(_ broker: BrokerProcess) throws -> Int { try broker.kafkaPort() }

    /// A commit of `offset` for partition 0 and `offset * 2` for partition 1 (one record:
    /// all or nothing), outside any generation (a group without members accepts it).
    static func commitRequest(_ offset: Int64) -> OffsetCommitRequest {
        OffsetCommitRequest(groupId: "g", generationId: -1, memberId: "", topics: [
            .init(name: topic, partitions: [.init(partitionIndex: 0, committedOffset: offset), .init(partitionIndex: 1, committedOffset: offset * 2)]),
        ])
    }

    static func commit(_ client: BlockingKafkaClient, _ offset: Int64) throws {
        var body = try client.call(.offsetCommit, version: 7, commitRequest(offset))
        let response = try OffsetCommitResponse(from: &body, version: 7)
        let codes = response.topics.flatMap { $0.partitions.map(\.errorCode) }
        guard codes == [0, 0] else { throw BlockingKafkaClient.Failure(description: "commit \(offset) refused: \(codes)") }
    }

    static func committed(_ port: Int) throws -> [Int32: Int64] {
        let client = try BlockingKafkaClient(port: port)
        var body = try client.call(.offsetFetch, version: 5, OffsetFetchRequest(groupId: "g", topics: [.init(name: topic, partitionIndexes: [0, 1])]))
        let response = try OffsetFetchResponse(from: &body, version: 5)
        var found: [Int32: Int64] = [:]
        for p in response.topics.flatMap(\.partitions) { found[p.partitionIndex] = p.committedOffset }
        return found
    }

    /// A scrape of the broker's /metrics: the value of `series`, 0 when absent.
    static func metric(_ broker: BrokerProcess, _ series: String) throws -> Double {
        let admin = try #require(broker.adminAddress)
        let text = try String(contentsOf: URL(string: "http://\(admin)/metrics")!, encoding: .utf8)
        let line = text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }

    /// Commits answered through the Kafka listener survive kill -9 of the broker even when
    /// no fsync ran (offsets.flush.ms of an hour: every answer came before any fsync, which
    /// /metrics shows): the kernel holds the written log. A commit sent but not answered
    /// when the kill lands is all or nothing. Three kills on one data directory, with a
    /// seeded number of commits each (SPOOL_TEST_SEED replays it).
    @Test func answeredCommitsSurviveKillNine() throws {
        let seed = ProcessInfo.processInfo.environment["SPOOL_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("answeredCommitsSurviveKillNine seed \(seed) (rerun: SPOOL_TEST_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        let directory = NSTemporaryDirectory() + "spool-commit-kill-" + UUID().uuidString
        var brokers: [BrokerProcess] = []
        defer { withExtendedLifetime(brokers) {} }
        var next: Int64 = 1
        for round in 0..<3 {
            let broker = try BrokerProcess(arguments: ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--offsets-flush-ms", "3600000"])
            brokers.append(broker)
            let port = try Self.kafkaPort(broker)
            if round == 0 {
                #expect(try broker.spool(["topic", "create", Self.topic, "--partitions", "2"]).status == 0)
            } else {
                // Every answered commit is there; the one in flight at the kill may be too
                // (written, not yet answered): whole or not at all, and then counted.
                let found = try Self.committed(port)
                #expect(found == [0: next - 1, 1: (next - 1) * 2] || found == [0: next, 1: next * 2],
                        "round \(round), seed \(seed): \(found), next \(next): acknowledged commits lost by kill -9")
                if found == [0: next, 1: next * 2] { next += 1 }
            }
            let client = try BlockingKafkaClient(port: port)
            for _ in 0..<Int.random(in: 20...400, using: &random) {
                try Self.commit(client, next)
                next += 1
            }
            #expect(try Self.metric(broker, "spool_offsets_fsync_duration_seconds_count") == 0,
                    "round \(round): commits were answered without waiting for an fsync")
            // One more commit in flight when the kill lands.
            try client.send(.offsetCommit, version: 7, Self.commitRequest(next))
            if Bool.random(using: &random) { usleep(UInt32.random(in: 0...2_000, using: &random)) }
            kill(broker.pid, SIGKILL)
            broker.process.waitUntilExit()
            #expect(broker.process.terminationReason == .uncaughtSignal)
            // Answered before the kill (it then counts) or not: the restart tells.
            if (try? client.receive()) != nil { next += 1 }
        }
        // The in-flight commit of the last round was applied whole or not at all.
        let last = try BrokerProcess(arguments: ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0"])
        brokers.append(last)
        let found = try Self.committed(try Self.kafkaPort(last))
        #expect(found == [0: next - 1, 1: (next - 1) * 2] || found == [0: next, 1: next * 2], "seed \(seed): \(found), next \(next)")
    }

    /// The broker answers commits once written unless told otherwise.
    @Test func theBrokerDefaultIsAnsweredOnceWritten() {
        #expect(BrokerConfig(dataDirectory: "/x").storage.offsetsFlush == .interval(millis: 1000))
    }

    /// `--offsets-flush-ms 0` restores fsync-before-answer: every answered commit was
    /// covered by an fsync round (a serial committer shares none).
    @Test func flushZeroFsyncsBeforeEachAnswer() throws {
        let broker = try BrokerProcess(arguments: ["broker", "--data-dir", NSTemporaryDirectory() + "spool-commit-sync-" + UUID().uuidString,
                                                   "--listen", "127.0.0.1:0", "--offsets-flush-ms", "0"])
        #expect(try broker.spool(["topic", "create", Self.topic, "--partitions", "2"]).status == 0)
        let client = try BlockingKafkaClient(port: try Self.kafkaPort(broker))
        let before = try Self.metric(broker, "spool_offsets_fsync_duration_seconds_count")
        for i in Int64(1)...50 { try Self.commit(client, i) }
        #expect(try Self.metric(broker, "spool_offsets_fsync_duration_seconds_count") - before >= 50)
        #expect(try Self.metric(broker, "spool_offsets_fsync_commits_sum") >= 50)
        #expect(broker.terminate() == 0)
    }
}

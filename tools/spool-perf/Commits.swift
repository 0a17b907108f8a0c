import ArgumentParser
import Foundation
import SpoolClient

/// `spool-perf commits`: one group consumer that reads a record and commits it
/// synchronously (`commit(record)`, awaited) before taking the next, as an application
/// committing per record does; reports commits/s and the commit round trip. The native
/// counterpart of `tools/kafka-clients/commit_bench.py` (see tools/bench-commits.sh).
struct Commits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume an existing topic in a group, committing each record synchronously; report commits/s.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Consumer group.") var group = "spool-perf-commits"
    @Option(help: "Give up after this many seconds without reaching --records.") var timeout = 120

    func run() async throws {
        let connection = try await common.connect()
        var config = ConsumerConfig(group: group)
        config.enableAutoCommit = false
        config.maxWaitMillis = 100
        let consumer = SpoolConsumer(connection: connection, config: config)
        try await consumer.subscribe(topics: [common.topic], group: group, from: .beginning)
        let target = common.records
        let deadline = ContinuousClock.now + .seconds(timeout)
        struct Run: Sendable {
            var commits = 0
            var commitNanos: [Int64] = []
            var start: ContinuousClock.Instant?
            var last: (TopicPartition, Int64)?
        }
        let worker = Task { () throws -> Run in
            var run = Run()
            run.commitNanos.reserveCapacity(target)
            for try await r in consumer.records() {
                let before = ContinuousClock.now
                try await consumer.commit(r)
                let after = ContinuousClock.now
                // The first commit (group joined, first fetch) starts the clock, as in commit_bench.py.
                if run.start == nil {
                    run.start = after
                } else {
                    let d = (after - before).components
                    run.commitNanos.append(d.seconds * 1_000_000_000 + d.attoseconds / 1_000_000_000)
                    run.commits += 1
                }
                run.last = (TopicPartition(r.topic, r.partition), r.offset)
                if run.commits >= target || ContinuousClock.now >= deadline { break }
            }
            return run
        }
        let watcher = Task {
            while ContinuousClock.now < deadline + .seconds(5) && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
            worker.cancel()
        }
        let outcome = await worker.result
        watcher.cancel()
        let end = ContinuousClock.now
        let run = try outcome.get()
        let commits = run.commits, start = run.start, last = run.last
        var commitNanos = run.commitNanos
        await consumer.unsubscribe()
        // The group's stored offset must be the last record committed + 1.
        if let (tp, offset) = last {
            let stored = try await SpoolAdmin(connection).committedOffsets(group: group, topics: [tp.topic])
                .first { $0.partition == tp.partition }?.offset
            guard stored == offset + 1 else { throw CleanExitError("committed offset \(stored ?? -1), expected \(offset + 1)") }
        }
        await connection.close()
        let d = (end - (start ?? end)).components
        let seconds = max(Double(d.seconds) + Double(d.attoseconds) / 1e18, 1e-9)
        commitNanos.sort()
        func pct(_ p: Double) -> Double {
            commitNanos.isEmpty ? 0 : Double(commitNanos[min(commitNanos.count - 1, Int(p * Double(commitNanos.count)))]) / 1000
        }
        let mean = commitNanos.isEmpty ? 0 : Double(commitNanos.reduce(0, +)) / Double(commitNanos.count) / 1000
        print(String(format: "{\"client\":\"spool\",\"commits\":%d,\"seconds\":%.3f,\"commits_per_sec\":%.1f,\"commit_us_mean\":%.1f,\"commit_us_p50\":%.1f,\"commit_us_p99\":%.1f}",
                     commits, seconds, Double(commits) / seconds, mean, pct(0.5), pct(0.99)))
        fflush(nil)
        if commits < target { throw CleanExitError("only \(commits) of \(target) commits within \(timeout) s") }
    }
}

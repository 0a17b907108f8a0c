import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import SpoolClient

/// `spool-perf consume`: read N records from the beginning as fast as possible and report
/// the rates as kafka-consumer-perf-test does (no latency: a consumer from the beginning
/// measures throughput, not end-to-end time; `spool-perf e2e` measures that).
struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume records from the beginning of an existing topic and report throughput.",
        discussion: """
            --api records: the SpoolConsumer.records() iterator (each record a view over its batch);
            --api poll: SpoolConsumer.poll() rounds; --api batches: whole batches, not decompressed (the fetch path alone);
            --api decoder: the baseline the record views replaced, a Record (key, value, headers) built per record
            by RecordDecoder from batches fetched as in --api batches.
            The summary gives the rate over the whole run and the fetch rate, from the first fetch to the
            last record received (so a run that times out reports the rate while data flowed).
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Concurrent consumers; the topic's partitions are split among them.") var consumers = 1
    @Option(help: "Bytes per partition per fetch.") var fetchBytes = 4 << 20
    @Option(help: "Give up after this many seconds without reaching --records.") var timeout = 120
    @Option(help: "records, poll, batches or decoder.") var api = "records"
    @Flag(help: "Same as --api batches.") var skipDecode = false

    func validate() throws {
        guard consumers >= 1 && consumers <= 256 else { throw ValidationError("--consumers must be 1...256") }
        guard fetchBytes >= 1024 && fetchBytes <= 16 << 20 else { throw ValidationError("--fetch-bytes must be 1024...16777216") }
        guard ["records", "poll", "batches", "decoder"].contains(api) else { throw ValidationError("--api must be records, poll, batches or decoder") }
    }

    func run() async throws {
        let mode = skipDecode ? "batches" : api
        let partitions = try await existingPartitions()
        let counters = ConsumeCounters()
        let target = common.records
        let topic = common.topic
        let deadline = ContinuousClock.now + .seconds(timeout)
        let count = min(consumers, partitions.count)
        let perPartitionBytes = UInt32(fetchBytes)
        let reporter = Task {
            var last = counters.snapshot()
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                let now = counters.snapshot()
                let d = now.records - last.records, b = now.bytes - last.bytes
                FileHandle.standardError.write(Data(String(format: "%d records received, %.1f records/sec (%.2f MB/sec)\n", d, Double(d), Double(b) / 1_048_576).utf8))
                last = now
            }
        }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<count {
                let mine = partitions.enumerated().filter { $0.offset % count == c }.map(\.element)
                group.addTask {
                    let connection = try await common.connect()
                    var config = ConsumerConfig()
                    config.maxWaitMillis = 100
                    config.maxBytesPerPartition = perPartitionBytes
                    config.maxPollRecords = 100_000
                    let consumer = SpoolConsumer(connection: connection, config: config)
                    try await consumer.assign(topic: topic, partitions: mine, from: .beginning)
                    counters.fetchStarted()
                    switch mode {
                    case "batches":
                        while counters.records < target && ContinuousClock.now < deadline {
                            var records = 0, bytes = 0
                            for f in try await consumer.pollBatches() {
                                records += Int(f.batch.header.nextOffset - max(f.batch.header.baseOffset, f.skipBelow))
                                bytes += f.batch.bytes.readableBytes
                            }
                            counters.add(records: records, bytes: bytes)
                        }
                    case "decoder":
                        while counters.records < target && ContinuousClock.now < deadline {
                            var built: [Record] = []
                            var bytes = 0
                            for f in try await consumer.pollBatches() {
                                var decoder = try f.batch.recordDecoder()
                                while let r = try decoder.next() {
                                    if r.offset < f.skipBelow { continue }
                                    bytes += (r.key?.readableBytes ?? 0) + (r.value?.readableBytes ?? 0)
                                    built.append(r)
                                }
                            }
                            counters.add(records: built.count, bytes: bytes)
                        }
                    case "poll":
                        while counters.records < target && ContinuousClock.now < deadline {
                            var bytes = 0
                            let records = try await consumer.poll()
                            for r in records { bytes += (r.keyLength ?? 0) + (r.valueLength ?? 0) }
                            counters.add(records: records.count, bytes: bytes)
                        }
                    default:
                        // Every record through the public iterator, counted in local runs; the
                        // iteration is cancelled at the deadline (it would otherwise wait for more).
                        let worker = Task {
                            var records = 0, bytes = 0
                            var before = 0 // all consumers' count at the last flush
                            defer { counters.add(records: records, bytes: bytes) }
                            for try await r in consumer.records() {
                                records += 1
                                bytes += (r.keyLength ?? 0) + (r.valueLength ?? 0)
                                if before + records >= target { break }
                                if records == 4096 {
                                    before = counters.add(records: records, bytes: bytes)
                                    records = 0
                                    bytes = 0
                                }
                            }
                        }
                        // Stops this consumer once all of them together reached the target, or at the deadline.
                        let watcher = Task {
                            while counters.records < target && ContinuousClock.now < deadline && !Task.isCancelled {
                                try? await Task.sleep(for: .milliseconds(20))
                            }
                            worker.cancel()
                        }
                        if case .failure(let error) = await worker.result, !(error is CancellationError) { throw error }
                        watcher.cancel()
                    }
                    counters.finished(consumer.metrics)
                    await connection.close()
                }
            }
            try await group.waitForAll()
        }
        reporter.cancel()
        let summary = counters.summary(start: start)
        print(summary.text)
        if common.json { print(summary.json) }
        fflush(nil)
        if counters.records < target {
            throw CleanExitError("only \(counters.records) of \(target) records arrived within \(timeout) s")
        }
    }

    /// The topic's partitions; a missing topic is an error (this tool only reads).
    func existingPartitions() async throws -> [Int32] {
        let connection = try await common.connect()
        defer { Task { await connection.close() } }
        do {
            return try await SpoolAdmin(connection).describeTopic(common.topic).partitions.map(\.partition)
        } catch let error as SpoolStatusError where error.code == .notFound {
            throw CleanExitError("topic \(common.topic) does not exist: produce to it first (spool-perf produce --topic \(common.topic) …)")
        }
    }
}

/// Records and bytes received by every consumer task, and when data flowed.
final class ConsumeCounters: Sendable {
    struct State {
        var records = 0
        var bytes = 0
        var fetches = 0
        var firstFetch: ContinuousClock.Instant?
        var lastData: ContinuousClock.Instant?
    }

    private let state = NIOLockedValueBox(State())

    func fetchStarted() {
        state.withLockedValue { s in if s.firstFetch == nil { s.firstFetch = .now } }
    }

    /// Adds a run of records; returns the total so far.
    @discardableResult
    func add(records: Int, bytes: Int) -> Int {
        state.withLockedValue { s in
            s.fetches += 1
            guard records > 0 else { return s.records }
            s.records += records
            s.bytes += bytes
            return s.records
        }
    }

    var records: Int { state.withLockedValue { $0.records } }

    /// One consumer finished: its last fetch that brought data ends the time data flowed.
    func finished(_ metrics: SpoolConsumer.ConsumerMetrics) {
        state.withLockedValue { s in
            if let at = metrics.lastDataAt, s.lastData.map({ at > $0 }) ?? true { s.lastData = at }
        }
    }
    func snapshot() -> (records: Int, bytes: Int) { state.withLockedValue { ($0.records, $0.bytes) } }

    /// kafka-consumer-perf-test's columns: the whole run, then the fetch phase (first fetch
    /// to last record received).
    func summary(start: ContinuousClock.Instant) -> (text: String, json: String) {
        let s = state.withLockedValue { $0 }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let end = s.lastData ?? .now
        let total = max(seconds(end - start), 1e-9)
        let fetch = max(seconds(end - (s.firstFetch ?? start)), 1e-9)
        let mb = Double(s.bytes) / 1_048_576
        let text = String(format: "%d records received, %.2f MB, %.1f records/sec (%.2f MB/sec); fetch phase %.0f ms: %.1f records/sec (%.2f MB/sec)",
                          s.records, mb, Double(s.records) / total, mb / total, fetch * 1000, Double(s.records) / fetch, mb / fetch)
        let json = String(format: "{\"records\":%d,\"bytes\":%d,\"seconds\":%.3f,\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"fetch_ms\":%.1f,\"fetch_records_per_sec\":%.1f,\"fetch_mb_per_sec\":%.3f}",
                          s.records, s.bytes, total, Double(s.records) / total, mb / total, fetch * 1000, Double(s.records) / fetch, mb / fetch)
        return (text, json)
    }
}

/// A run that ended without reaching its goal: printed, with a non-zero exit.
struct CleanExitError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

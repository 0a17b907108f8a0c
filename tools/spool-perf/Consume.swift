import ArgumentParser
import Foundation
import SpoolClient
import SpoolProtocol
import SpoolRecords

/// `spool-perf consume`: read N records from the beginning as fast as possible.
struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consume records from the beginning and report throughput.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Concurrent consumers; the topic's partitions are split among them.") var consumers = 1
    @Option(help: "Bytes per partition per fetch.") var fetchBytes = 4 << 20
    @Option(help: "Give up after this many seconds without reaching --records.") var timeout = 120
    @Flag(help: "Count records from batch headers without decompressing them (measures the fetch path alone).") var skipDecode = false

    func validate() throws {
        guard consumers >= 1 && consumers <= 256 else { throw ValidationError("--consumers must be 1...256") }
        guard fetchBytes >= 1024 && fetchBytes <= 16 << 20 else { throw ValidationError("--fetch-bytes must be 1024...16777216") }
    }

    func run() async throws {
        let partitions = try await common.prepareTopic(partitions: 1)
        let stats = Stats(label: "received")
        let reporter = progressLoop(stats)
        let target = common.records
        let topic = common.topic
        let deadline = ContinuousClock.now + .seconds(timeout)
        let count = min(consumers, partitions.count)
        let perPartitionBytes = UInt32(fetchBytes)
        let skip = skipDecode
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<count {
                let mine = partitions.enumerated().filter { $0.offset % count == c }.map(\.element)
                group.addTask {
                    let connection = try await common.connect()
                    let consumer = SpoolConsumer(connection: connection, maxWaitMillis: 100, maxBytesPerPartition: perPartitionBytes)
                    try await consumer.assign(topic: topic, partitions: mine, from: .beginning)
                    while stats.records < target && ContinuousClock.now < deadline {
                        if skip {
                            var records = 0
                            var bytes = 0
                            for f in try await consumer.pollBatches() {
                                records += Int(f.batch.header.nextOffset - max(f.batch.header.baseOffset, f.skipBelow))
                                bytes += f.batch.bytes.readableBytes
                            }
                            stats.recordMany(records: records, bytes: bytes)
                        } else {
                            // Every record is decompressed and decoded (key, value, headers),
                            // straight from the batch, without building an array of records.
                            var records = 0
                            var bytes = 0
                            for f in try await consumer.pollBatches() {
                                var decoder = try f.batch.recordDecoder()
                                while let r = try decoder.next() {
                                    if r.offset < f.skipBelow { continue }
                                    records += 1
                                    bytes += r.value?.readableBytes ?? 0
                                }
                            }
                            stats.recordMany(records: records, bytes: bytes)
                        }
                    }
                    await connection.close()
                }
            }
            try await group.waitForAll()
        }
        reporter.cancel()
        stats.summary(json: common.json)
        if stats.records < target {
            throw CleanExitError("only \(stats.records) of \(target) records arrived within \(timeout) s")
        }
    }
}

/// A run that ended without reaching its goal: printed, with a non-zero exit.
struct CleanExitError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

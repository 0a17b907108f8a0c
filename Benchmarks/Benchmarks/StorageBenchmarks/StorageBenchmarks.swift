// Storage benchmarks. Each figure that matters is a ratio against a baseline
// measured in the same run:
//   - append of 64 KiB batches through PartitionLog vs plain pwrite() of the same bytes;
//   - acks=all appends (fsync with group commit) with 1, 8 and 64 concurrent appenders,
//     each op = one acknowledged append per appender, vs one fdatasync per write;
//   - offset lookup (index + header walk) latency;
//   - recovery of an unclean 256 MiB tail (scaled to ms per GiB);
//   - committed offsets: commits/s with 1 and 64 committer threads through OffsetStore (append-only
//     log, group commit) vs the whole-table rewrite of earlier versions (LegacyOffsetTable below),
//     both over a table of 1,000 committed partitions.

import Benchmark
import Foundation
import NIOCore
import SpoolRecords
import SpoolStorage

let scratch = NSTemporaryDirectory() + "spool-bench-\(getpid())"

func freshDirectory(_ name: String) -> String {
    let path = scratch + "/" + name
    try? FileManager.default.removeItem(atPath: path)
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func batch(records: Int, valueBytes: Int, codec: CompressionCodec = .none) -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: codec)
    let value = [UInt8](repeating: 0x61, count: valueBytes)
    for i in 0..<records { builder.append(key: nil, value: value, timestamp: 1_700_000_000_000 + Int64(i)) }
    return try! builder.build()
}

func openLog(_ dir: String, segmentBytes: Int64 = 256 << 20, retentionBytes: Int64 = 512 << 20, clean: Bool = true) -> PartitionLog {
    var config = TopicConfig()
    config.segmentBytes = segmentBytes
    config.retentionBytes = retentionBytes
    config.retentionMillis = -1
    config.maxMessageBytes = 8 << 20
    return try! PartitionLog(directory: dir + "/t-0", topic: "t", partition: 0, config: config,
                             files: FileDescriptorCache(capacity: 64), cleanShutdown: clean)
}

let acksPerSecond = BenchmarkMetric.custom("acks/s", polarity: .prefersLarger, useScalingFactor: false)
let commitsPerSecond = BenchmarkMetric.custom("commits/s", polarity: .prefersLarger, useScalingFactor: false)
let msPerGiB = BenchmarkMetric.custom("recovery ms per GiB", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock],
        warmupIterations: 2,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    // 64 KiB of 100-byte records: what a producer's batch looks like on the produce path.
    let template = batch(records: 560, valueBytes: 100)

    Benchmark("Baseline pwrite 64KiB (page cache)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let dir = freshDirectory("pwrite")
        let fd = open(dir + "/file", O_RDWR | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        var position: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            template.withUnsafeReadableBytes { raw in
                _ = pwrite(fd, raw.baseAddress, raw.count, off_t(position))
            }
            position = (position + Int64(template.readableBytes)) % (256 << 20)
        }
    }

    Benchmark("PartitionLog append 64KiB (validate+CRC+offsets+pwrite)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let dir = freshDirectory("append")
        let log = openLog(dir)
        var n = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var bytes = template
            _ = try log.append(&bytes)
            n += 1
            if n % 2048 == 0 { _ = try log.applyRetention(now: 0) }
        }
        benchmark.stopMeasurement()
        try log.close()
    }

    // acks=all: each appender appends a 1 KiB batch and waits for it to be durable.
    let small = batch(records: 10, valueBytes: 90)
    Benchmark("Baseline pwrite+fdatasync 1KiB (one fsync per write)") { benchmark in
        let dir = freshDirectory("fsync")
        let fd = open(dir + "/file", O_RDWR | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        var position: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            small.withUnsafeReadableBytes { raw in _ = pwrite(fd, raw.baseAddress, raw.count, off_t(position)) }
            fdatasync(fd)
            position += Int64(small.readableBytes)
        }
    }
    for appenders in [1, 8, 64] {
        Benchmark(
            "acks=all group commit, \(appenders) appenders (op = 1 ack each)",
            configuration: .init(metrics: [.throughput, .wallClock, acksPerSecond], maxDuration: .seconds(3))
        ) { benchmark in
            let dir = freshDirectory("group\(appenders)")
            let log = openLog(dir)
            let start = ContinuousClock.now
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<appenders {
                        group.addTask {
                            var bytes = small
                            let r = try log.append(&bytes)
                            try await log.waitUntilDurable(r.lastOffset + 1)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            benchmark.stopMeasurement()
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(acksPerSecond, Int(Double(appenders * benchmark.scaledIterations.count) / seconds))
            try log.close()
        }
    }

    // Committed offsets: `committers` threads each commit `commitsPerThread` times (one partition
    // per commit, 1,000 partitions already committed), all at once; the op is the whole run.
    for committers in [1, 64] {
        let commitsPerThread = committers == 1 ? 200 : 20
        for legacy in [true, false] {
            let name = legacy ? "Baseline offsets: whole-table rewrite (old store)" : "OffsetStore: append-only log + group commit"
            Benchmark(
                "\(name), \(committers) committers",
                configuration: .init(metrics: [.wallClock, commitsPerSecond], maxDuration: .seconds(5), maxIterations: 20)
            ) { benchmark in
                let dir = freshDirectory("offsets-\(legacy)-\(committers)")
                let commit: @Sendable (String, [TopicPartition: CommittedOffset]) throws -> Void
                if legacy {
                    let table = LegacyOffsetTable(dataDirectory: dir)
                    commit = { try table.commit(group: $0, $1) }
                } else {
                    let store = try OffsetStore(dataDirectory: dir)
                    commit = { try store.commit(group: $0, $1) }
                }
                for g in 0..<100 {
                    var offsets: [TopicPartition: CommittedOffset] = [:]
                    for p in 0..<10 { offsets[TopicPartition("topic", Int32(p))] = CommittedOffset(offset: 1, commitTimestamp: 0) }
                    try commit("group-\(g)", offsets)
                }
                var total = Duration.zero
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    let start = ContinuousClock.now
                    let done = DispatchGroup()
                    for c in 0..<committers {
                        done.enter()
                        Thread.detachNewThread {
                            for i in 0..<commitsPerThread {
                                try! commit("group-\(c % 100)", [TopicPartition("topic", Int32(i % 10)): CommittedOffset(offset: Int64(i), commitTimestamp: 0)])
                            }
                            done.leave()
                        }
                    }
                    done.wait()
                    total += ContinuousClock.now - start
                }
                benchmark.stopMeasurement()
                let seconds = Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18
                let commits = committers * commitsPerThread * benchmark.scaledIterations.count
                benchmark.measurement(commitsPerSecond, Int(Double(commits) / seconds))
            }
        }
    }

    // Async commits: `inFlight` commits at once from tasks (no thread each), as a request
    // handler would issue them; the op is one such wave.
    for inFlight in [64, 1024] {
        Benchmark(
            "OffsetStore async commits, \(inFlight) in flight",
            configuration: .init(metrics: [.wallClock, commitsPerSecond], maxDuration: .seconds(5), maxIterations: 50)
        ) { benchmark in
            let dir = freshDirectory("offsets-async-\(inFlight)")
            let store = try OffsetStore(dataDirectory: dir)
            for g in 0..<100 {
                var offsets: [TopicPartition: CommittedOffset] = [:]
                for p in 0..<10 { offsets[TopicPartition("topic", Int32(p))] = CommittedOffset(offset: 1, commitTimestamp: 0) }
                try store.commit(group: "group-\(g)", offsets)
            }
            var total = Duration.zero
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for c in 0..<inFlight {
                        group.addTask {
                            try await store.commit(group: "group-\(c % 100)", offsets: [TopicPartition("topic", Int32(c % 10)): CommittedOffset(offset: Int64(c), commitTimestamp: 0)])
                        }
                    }
                    try await group.waitForAll()
                }
                total += ContinuousClock.now - start
            }
            benchmark.stopMeasurement()
            let seconds = Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18
            benchmark.measurement(commitsPerSecond, Int(Double(inFlight * benchmark.scaledIterations.count) / seconds))
            store.close()
        }
    }

    // Lookup: 200k batches of 5 records over several segments; locate a random offset.
    Benchmark("Offset lookup (index + header walk), 1M records", configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .kilo)) { benchmark in
        let log = LookupFixture.log
        let end = log.endOffset
        var rng = SystemRandomNumberGenerator()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try log.read(from: Int64.random(in: 0..<end, using: &rng), maxBytes: 64 << 10))
        }
    }

    // Recovery: 256 MiB written without a clean shutdown, then reopened (each iteration re-scans
    // and CRC-checks everything; the data sits in the page cache, so this is the CPU cost).
    Benchmark("Recovery of a 256 MiB unclean segment", configuration: .init(metrics: [.wallClock, msPerGiB], maxDuration: .seconds(10), maxIterations: 5)) { benchmark in
        let dir = freshDirectory("recovery")
        let writer = openLog(dir, segmentBytes: 1 << 30, retentionBytes: -1)
        let chunk = batch(records: 560, valueBytes: 100, codec: .lz4)
        var written = 0
        while written < 256 << 20 {
            var bytes = chunk
            _ = try writer.append(&bytes)
            written += chunk.readableBytes
        }
        try writer.flush()
        let start = ContinuousClock.now
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let log = openLog(dir, segmentBytes: 1 << 30, retentionBytes: -1, clean: false)
            blackHole(log.endOffset)
        }
        benchmark.stopMeasurement()
        let elapsed = ContinuousClock.now - start
        let ms = (Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15) / Double(benchmark.scaledIterations.count)
        benchmark.measurement(msPerGiB, Int(ms * Double(1 << 30) / Double(written)))
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Built once per process: the log the lookup benchmark searches.
enum LookupFixture {
    static let log: PartitionLog = {
        let dir = freshDirectory("lookup")
        let log = openLog(dir, segmentBytes: 16 << 20)
        let five = batch(records: 5, valueBytes: 100)
        for _ in 0..<200_000 {
            var bytes = five
            _ = try! log.append(&bytes)
        }
        return log
    }()
}

/// The committed-offsets store of earlier versions, kept here as the baseline: every commit
/// rewrites the whole table (temporary file, fsync, rename, fsync of the directory) under
/// one lock. Same file format as it had.
final class LegacyOffsetTable: @unchecked Sendable {
    let path: String
    let directory: String
    let lock = NSLock()
    var table: [String: [TopicPartition: CommittedOffset]] = [:]

    init(dataDirectory: String) {
        directory = dataDirectory
        path = dataDirectory + "/consumer-offsets.meta"
    }

    func commit(group: String, _ offsets: [TopicPartition: CommittedOffset]) throws {
        lock.lock()
        defer { lock.unlock() }
        var next = table
        next[group, default: [:]].merge(offsets) { _, new in new }
        var text = "spool-offsets v1\n"
        for g in next.keys.sorted() {
            for (tp, c) in next[g]!.sorted(by: { $0.key < $1.key }) {
                text += "\(g)\t\(tp.topic)\t\(tp.partition)\t\(c.offset)\t\(c.commitTimestamp)\t\(c.metadata)\n"
            }
        }
        let bytes = Array(text.utf8)
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        fdatasync(fd)
        close(fd)
        rename(temp, path)
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        fsync(dirFD)
        close(dirFD)
        table = next
    }
}

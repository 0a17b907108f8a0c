// Batch-layer benchmarks: CRC-32C paths, and building / reading batches of
// realistic event records with each codec.
//
// Throughput is reported per operation; each benchmark says what one operation
// is, so MB/s = throughput × bytes per operation. Custom metrics give MB/s of
// uncompressed data directly, and the compression ratio (× 100).

import Benchmark
import NIOCore
import SpoolRecords

/// 100–200 byte JSON-like event lines, deterministic.
func eventValue(_ i: Int) -> [UInt8] {
    let actions = ["view", "click", "add_to_cart", "purchase", "search"]
    let s = "{\"ts\":\(1_700_000_000_000 + i),\"user\":\"user-\(i % 9973)\",\"session\":\"s-\((i * 7919) % 100_003)\","
        + "\"action\":\"\(actions[i % actions.count])\",\"path\":\"/api/v1/items/\(i % 5000)\",\"status\":\(i % 17 == 0 ? 500 : 200),"
        + "\"latency_ms\":\((i * 31) % 250)}"
    return Array(s.utf8)
}

let eventsPerBatch = 1000
let events: [[UInt8]] = (0..<eventsPerBatch).map(eventValue)
let eventKeys: [[UInt8]] = (0..<eventsPerBatch).map { Array("user-\($0 % 9973)".utf8) }
let rawEventBytes = events.reduce(0) { $0 + $1.count }

func buildEventBatch(_ codec: CompressionCodec) -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: codec, initialCapacity: 192 * 1024)
    for i in 0..<eventsPerBatch {
        builder.append(key: eventKeys[i], value: events[i], timestamp: 1_700_000_000_000 + Int64(i))
    }
    return try! builder.build()
}

let megabytesPerSecond = BenchmarkMetric.custom("MB/s (uncompressed)", polarity: .prefersLarger, useScalingFactor: false)
let ratioTimes100 = BenchmarkMetric.custom("compression ratio x100", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    // One operation = CRC-32C of 1 MiB, so throughput (ops/s) = MiB/s.
    let mebibyte = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
    Benchmark("CRC32C software 1MiB (ops/s = MiB/s)") { benchmark in
        for _ in benchmark.scaledIterations {
            mebibyte.withUnsafeBytes { blackHole(CRC32C.checksum($0, using: .software)) }
        }
    }
    if CRC32C.hardwareAvailable {
        Benchmark("CRC32C hardware 1MiB (ops/s = MiB/s)") { benchmark in
            for _ in benchmark.scaledIterations {
                mebibyte.withUnsafeBytes { blackHole(CRC32C.checksum($0, using: .hardware)) }
            }
        }
    }

    for codec in CompressionCodec.supported {
        let sample = buildEventBatch(codec)
        // Ratio against the same records in an uncompressed batch.
        let ratio = Double(buildEventBatch(.none).readableBytes) / Double(sample.readableBytes)
        Benchmark(
            "Build+compress \(codec) (1000 events/op)",
            configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal, megabytesPerSecond, ratioTimes100])
        ) { benchmark in
            let start = ContinuousClock.now
            for _ in benchmark.scaledIterations {
                blackHole(buildEventBatch(codec))
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(megabytesPerSecond, Int(Double(rawEventBytes * benchmark.scaledIterations.count) / seconds / 1e6))
            benchmark.measurement(ratioTimes100, Int(ratio * 100))
        }
        Benchmark(
            "Parse+decompress \(codec) (1000 events/op)",
            configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal, megabytesPerSecond])
        ) { benchmark in
            let start = ContinuousClock.now
            for _ in benchmark.scaledIterations {
                var reader = RecordBatchReader(sample)
                var decoder = try reader.next()!.recordDecoder()
                var valueBytes = 0
                while let record = try decoder.next() {
                    valueBytes &+= record.value?.readableBytes ?? 0
                }
                blackHole(valueBytes)
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(megabytesPerSecond, Int(Double(rawEventBytes * benchmark.scaledIterations.count) / seconds / 1e6))
        }
    }

    // The broker's door checks on one producer batch (1000 events): header + CRC only
    // (ProducedBatches.validate) against the full walk of every record (RecordBatchValidator,
    // decompressing into its reused scratch buffer). MB/s counts the uncompressed records.
    var validator = RecordBatchValidator()
    let limits = RecordBatchValidator.Limits()
    for codec in CompressionCodec.supported {
        let sample = buildEventBatch(codec)
        Benchmark(
            "Validate CRC-only \(codec) (1000 events/op)",
            configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal, megabytesPerSecond])
        ) { benchmark in
            let start = ContinuousClock.now
            for _ in benchmark.scaledIterations {
                blackHole(try ProducedBatches.validate(sample))
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(megabytesPerSecond, Int(Double(rawEventBytes * benchmark.scaledIterations.count) / seconds / 1e6))
        }
        Benchmark(
            "Validate records \(codec) (1000 events/op)",
            configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal, megabytesPerSecond])
        ) { benchmark in
            let start = ContinuousClock.now
            for _ in benchmark.scaledIterations {
                let produced = try ProducedBatches.validate(sample)
                try validator.validate(sample, produced, limits: limits, nowMillis: 1_700_000_000_000)
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(megabytesPerSecond, Int(Double(rawEventBytes * benchmark.scaledIterations.count) / seconds / 1e6))
        }
    }
}

import ArgumentParser
import Foundation
import NIOCore
import SpoolRecords

/// `spool-perf codecs`: every codec on the same records, in one run: compression ratio,
/// compress and decompress MB/s, and the broker's door check (CRC + inflate + record walk).
///
/// The records are the JSON-like values `spool-perf produce` sends (seeded, so every run
/// and every codec sees the same bytes), cut into batches of `--batch-bytes` as the
/// producer cuts them. Each pass runs every codec in turn, so a machine that gets busier
/// during the run slows all codecs alike; the figures are the median over the passes.
/// MB/s counts uncompressed records-section bytes (10^6 bytes per second).
struct Codecs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the codecs on the same records: ratio, compress/decompress MB/s, door validation MB/s.")

    @Option(help: "Records in the sample (cut into batches).") var records = 200_000
    @Option(help: "Bytes per record value.") var recordSize = 100
    @Option(help: "Uncompressed batch size in bytes, as the producer's batch.size.") var batchBytes = 64 * 1024
    @Option(help: "Passes over every codec; the median is reported.") var passes = 5
    @Option(help: "Seed of the record values.") var seed: UInt64 = 42
    @Flag(help: "Print a JSON summary as the last line of stdout.") var json = false

    func validate() throws {
        guard (1_000...10_000_000).contains(records) else { throw ValidationError("--records must be 1000...10000000") }
        guard (1...1 << 20).contains(recordSize) else { throw ValidationError("--record-size must be 1...1048576") }
        guard (1024...(16 << 20)).contains(batchBytes) else { throw ValidationError("--batch-bytes must be 1024...16777216") }
        guard (1...101).contains(passes) else { throw ValidationError("--passes must be 1...101") }
    }

    /// One codec's figures over the passes.
    struct Figures {
        var compressedBytes = 0
        var compressSeconds: [Double] = []
        var decompressSeconds: [Double] = []
        var validateSeconds: [Double] = []
    }

    func run() throws {
        let payloads = Payloads(kind: "json", size: recordSize, seed: seed)
        let base: Int64 = 1_700_000_000_000
        // The records sections of uncompressed batches, and each codec's batches of the same records.
        var batchesByCodec: [CompressionCodec: [ByteBuffer]] = [:]
        for codec in CompressionCodec.supported {
            var batches: [ByteBuffer] = []
            var builder = RecordBatchBuilder(codec: codec, initialCapacity: batchBytes + 1024)
            for i in 0..<records {
                builder.append(key: nil, value: payloads.values[(i &* 7) % payloads.values.count], timestamp: base + Int64(i))
                if builder.uncompressedBytes >= batchBytes || i == records - 1 {
                    batches.append(try builder.build())
                    builder = RecordBatchBuilder(codec: codec, baseOffset: Int64(i + 1), initialCapacity: batchBytes + 1024)
                }
            }
            batchesByCodec[codec] = batches
        }
        let sections = batchesByCodec[.none]!.map { $0.getSlice(at: $0.readerIndex + RecordBatchHeader.size, length: $0.readableBytes - RecordBatchHeader.size)! }
        let rawBytes = sections.reduce(0) { $0 + $1.readableBytes }
        let valueBytes = records * recordSize
        let maxSection = sections.map(\.readableBytes).max()!

        var figures: [CompressionCodec: Figures] = [:]
        var out = ByteBufferAllocator().buffer(capacity: Compression.maxCompressedBytes(maxSection, codec: .gzip) + (1 << 16))
        var inflated = ByteBufferAllocator().buffer(capacity: maxSection + (1 << 16))
        var validator = RecordBatchValidator()
        let limits = RecordBatchValidator.Limits()
        for _ in 0..<passes {
            for codec in CompressionCodec.supported {
                var f = figures[codec] ?? Figures()
                // Compress every records section.
                var compressed: [ByteBuffer] = []
                compressed.reserveCapacity(sections.count)
                var start = ContinuousClock.now
                for section in sections {
                    out.clear()
                    try section.withUnsafeReadableBytes { try Compression.compress($0, codec: codec, into: &out) }
                    compressed.append(out.getSlice(at: 0, length: out.readableBytes)!)
                }
                f.compressSeconds.append(seconds(ContinuousClock.now - start))
                f.compressedBytes = compressed.reduce(0) { $0 + $1.readableBytes }
                // Decompress them.
                start = ContinuousClock.now
                for (index, packed) in compressed.enumerated() {
                    inflated.clear()
                    try packed.withUnsafeReadableBytes { try Compression.decompress($0, codec: codec, maxBytes: 64 << 20, into: &inflated) }
                    precondition(inflated.readableBytes == sections[index].readableBytes, "\(codec) did not round-trip")
                }
                f.decompressSeconds.append(seconds(ContinuousClock.now - start))
                // The broker's door: header + CRC, then inflate and walk every record.
                start = ContinuousClock.now
                for batch in batchesByCodec[codec]! {
                    let produced = try ProducedBatches.validate(batch)
                    try validator.validate(batch, produced, limits: limits, nowMillis: base)
                }
                f.validateSeconds.append(seconds(ContinuousClock.now - start))
                figures[codec] = f
            }
        }

        print("\(records) records of \(recordSize) bytes (JSON-like, seed \(seed)), \(sections.count) batches of ~\(batchBytes / 1024) KiB; "
              + "\(rawBytes) bytes of records sections; median of \(passes) passes; MB/s of uncompressed records")
        print("codec    stored bytes   ratio   compress MB/s   decompress MB/s   door check MB/s   compress vs lz4   decompress vs lz4")
        let mbps = { (s: [Double]) in Double(rawBytes) / median(s) / 1e6 }
        let lz4 = figures[.lz4]!
        var jsonCodecs: [String] = []
        for codec in CompressionCodec.supported {
            let f = figures[codec]!
            let ratio = Double(rawBytes) / Double(f.compressedBytes)
            let c = mbps(f.compressSeconds), d = mbps(f.decompressSeconds), v = mbps(f.validateSeconds)
            print(codec.description.padding(toLength: 7, withPad: " ", startingAt: 0)
                  + String(format: "  %12d  %6.2f  %14.0f  %16.0f  %16.0f  %15.2fx  %17.2fx", f.compressedBytes, ratio, c, d, v,
                           c / mbps(lz4.compressSeconds), d / mbps(lz4.decompressSeconds)))
            jsonCodecs.append(String(format: "\"%@\":{\"stored_bytes\":%d,\"ratio\":%.3f,\"compress_mb_per_sec\":%.1f,\"decompress_mb_per_sec\":%.1f,\"validate_mb_per_sec\":%.1f}",
                                     codec.description, f.compressedBytes, ratio, c, d, v))
        }
        if json {
            print("{\"records\":\(records),\"record_bytes\":\(recordSize),\"value_bytes\":\(valueBytes),\"records_section_bytes\":\(rawBytes),\"batches\":\(sections.count),\"passes\":\(passes),\"codecs\":{\(jsonCodecs.joined(separator: ","))}}")
        }
        fflush(nil)
    }
}

private func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

private func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

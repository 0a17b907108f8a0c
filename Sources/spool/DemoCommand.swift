import ArgumentParser
import Foundation
import NIOCore
import SpoolRecords

/// A tour of the batch layer: build event batches with each codec, read them back, report sizes and speed.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build, compress and read back record batches with every codec."
    )

    @Option(help: "Records per batch.")
    var records = 1000

    func validate() throws {
        guard (1...1_000_000).contains(records) else { throw ValidationError("--records must be between 1 and 1000000") }
    }

    func run() throws {
        print("CRC-32C: \(CRC32C.hardwareAvailable ? "SSE4.2 hardware" : "software (slicing-by-8)")")
        print("codec   records  raw bytes  batch bytes  ratio  build+compress  read+decompress")
        for codec in CompressionCodec.supported {
            let start = ContinuousClock.now
            var builder = RecordBatchBuilder(codec: codec)
            for i in 0..<records {
                let value = "{\"ts\":\(1_700_000_000_000 + i),\"user\":\"user-\(i % 97)\",\"action\":\"click\",\"path\":\"/items/\(i % 1000)\",\"latency_ms\":\(i % 250)}"
                builder.append(key: Array("user-\(i % 97)".utf8), value: Array(value.utf8), timestamp: 1_700_000_000_000 + Int64(i))
            }
            let raw = builder.uncompressedBytes
            let batch = try builder.build()
            let built = ContinuousClock.now
            var reader = RecordBatchReader(batch)
            let decoded = try reader.next()!.records()
            let read = ContinuousClock.now
            precondition(decoded.count == records)
            let ratio = Double(raw) / Double(batch.readableBytes)
            print(
                codec.description.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + String(format: "%7d  %9d  %11d  %5.2f  %11.2f ms  %12.2f ms", records, raw, batch.readableBytes, ratio,
                             (built - start).milliseconds, (read - built).milliseconds))
        }
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

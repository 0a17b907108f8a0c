import ArgumentParser
import Foundation
import NIOCore
import SpoolRecords

/// Developer tools: inspect log files and write sample batches for interop checks.
struct DebugCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Inspect record batches and log segments.",
        subcommands: [DumpBatches.self, MakeBatches.self, AppendLoop.self]
    )
}

/// Prints every batch (and optionally every record) of a file of batches, like kafka-dump-log.
struct DumpBatches: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the record batches in a segment (.log) or batch file.",
        discussion: "Example: spool debug dump --records spool-data/events-0/00000000000000000000.log"
    )

    @Argument(help: "A file of record batches laid end to end.")
    var file: String

    @Flag(help: "Print every record too.")
    var records = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        var reader = RecordBatchReader(ByteBuffer(bytes: data))
        var position = 0
        do {
            while let batch = try reader.next() {
                let h = batch.header
                print("position \(position) baseOffset \(h.baseOffset) lastOffset \(h.lastOffset) count \(h.recordCount) size \(h.totalBytes) codec \(batch.codec) baseTimestamp \(h.baseTimestamp) maxTimestamp \(h.maxTimestamp) crc \(h.crc)")
                if records {
                    for r in try batch.records() {
                        let key = r.key.map { String(buffer: $0) } ?? "null"
                        let value = r.value.map { String(buffer: $0) } ?? "null"
                        print("  offset \(r.offset) timestamp \(r.timestamp) key \(key) value \(value) headers \(r.headers.count)")
                    }
                }
                position = reader.consumedBytes
            }
        } catch let error as RecordsError {
            throw CLIError("error at file position \(position): \(error)")
        }
    }
}

/// Writes batches built by Spool, one file per codec, with a JSON manifest of their records.
/// `tools/interop/check.sh` has kafka-python read them back.
struct MakeBatches: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-batches",
        abstract: "Write sample batches (every codec) and their manifests into a directory."
    )

    @Option(help: "Directory to write <codec>.bin and <codec>.json into.")
    var out: String

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let base: Int64 = 1_700_000_000_000
        for codec in CompressionCodec.supported {
            var file = ByteBuffer()
            var manifest: [ManifestRecord] = []
            var nextOffset: Int64 = 0
            // The last batch holds over 64 KiB of records: several snappy (xerial) chunks and lz4 blocks.
            for batchIndex in 0..<4 {
                var builder = RecordBatchBuilder(codec: codec, baseOffset: nextOffset)
                let count = [4, 150, 1, 1000][batchIndex]
                for i in 0..<count {
                    let key: [UInt8]? = i % 4 == 1 ? nil : Array("key-\(batchIndex)-\(i % 13)".utf8)
                    let value: [UInt8]? = i % 50 == 3 ? nil
                        : Array("{\"ts\":\(base + Int64(i)),\"user\":\"ü-\(i % 17)\",\"seq\":\(i),\"pad\":\"\(String(repeating: "ab", count: i % 40))\"}".utf8)
                    let headers = i % 5 == 0 ? [RecordHeader(key: "trace-id", value: "t\(i)"), RecordHeader(key: "n", value: nil)] : []
                    let ts = base + Int64(batchIndex * 1000 + i * 3)
                    builder.append(key: key, value: value, headers: headers, timestamp: ts)
                    manifest.append(ManifestRecord(
                        offset: nextOffset + Int64(i), timestamp: ts, key: key.map(hexString), value: value.map(hexString),
                        headers: headers.map { ManifestHeader(key: $0.key, value: $0.value.map { hexString(Array($0.readableBytesView)) }) }))
                }
                var batch = try builder.build()
                file.writeBuffer(&batch)
                nextOffset += Int64(count)
            }
            let name = codec.description
            try Data(file.readableBytesView).write(to: URL(fileURLWithPath: out).appendingPathComponent("\(name).bin"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let json = try encoder.encode(manifest)
            try json.write(to: URL(fileURLWithPath: out).appendingPathComponent("\(name).json"))
            print("wrote \(name).bin: \(file.readableBytes) bytes, \(manifest.count) records")
        }
    }
}

/// One record as the interop manifest describes it (bytes as hex, null kept as null).
struct ManifestRecord: Encodable {
    var offset: Int64
    var timestamp: Int64
    var key: String?
    var value: String?
    var headers: [ManifestHeader]

    enum CodingKeys: String, CodingKey { case offset, timestamp, key, value, headers }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(offset, forKey: .offset)
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(key, forKey: .key) // encodes nil as null
        try c.encode(value, forKey: .value)
        try c.encode(headers, forKey: .headers)
    }
}

/// One record header in the interop manifest (value as hex, null kept as null).
struct ManifestHeader: Encodable {
    var key: String
    var value: String?

    enum CodingKeys: String, CodingKey { case key, value }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key, forKey: .key)
        try c.encode(value, forKey: .value)
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

import Foundation
import SpoolTestSupport
import NIOCore
import SpoolRecords
import Testing

/// `batch` with its records section replaced by `records` (and the count fields set), the
/// length and CRC recomputed: a batch whose header and CRC are right, whatever its records.
func rebuilt(_ batch: ByteBuffer, records: [UInt8], recordCount: Int32? = nil, lastOffsetDelta: Int32? = nil, attributes: Int16? = nil) -> ByteBuffer {
    var header = RecordBatchHeader(buffer: batch, at: batch.readerIndex)!
    header.batchLength = Int32(RecordBatchHeader.size - RecordBatchHeader.logOverhead + records.count)
    if let recordCount { header.recordCount = recordCount }
    if let lastOffsetDelta { header.lastOffsetDelta = lastOffsetDelta }
    if let attributes { header.attributes = attributes }
    var out = ByteBuffer()
    out.writeBytes([UInt8](repeating: 0, count: RecordBatchHeader.size))
    header.write(to: &out, at: 0)
    out.writeBytes(records)
    RecordBatch.writeCRC(in: &out, at: 0)
    return out
}

/// The (uncompressed) records section of a batch built with codec none.
func recordsSection(_ batch: ByteBuffer) -> [UInt8] {
    Array(batch.getBytes(at: batch.readerIndex + RecordBatchHeader.size, length: batch.readableBytes - RecordBatchHeader.size)!)
}

func validate(_ batch: ByteBuffer, limits: RecordBatchValidator.Limits = .init(), now: Int64 = 1_700_000_000_000) throws {
    let produced = try ProducedBatches.validate(batch)
    var validator = RecordBatchValidator()
    try validator.validate(batch, produced, limits: limits, nowMillis: now)
}

func code(_ body: () throws -> Void) -> RecordsError.Code? {
    do {
        try body()
        return nil
    } catch let error as RecordsError {
        return error.code
    } catch {
        return nil
    }
}

@Suite struct RecordBatchValidatorTests {
    @Test(arguments: CompressionCodec.supported)
    func wellFormedBatchesPass(codec: CompressionCodec) throws {
        try validate(try buildBatch(codec, count: 50))
        var builder = RecordBatchBuilder(codec: codec)
        builder.append(key: [UInt8](), value: nil, timestamp: 5)
        builder.append(key: nil, value: [UInt8](), timestamp: 4)
        try validate(try builder.build())
    }

    @Test func kafkaPythonFixturesPass() throws {
        for name in ["gzip", "lz4"] {
            let url = try #require(Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures/kafka-python"))
            let bytes = ByteBuffer(bytes: try Data(contentsOf: url))
            try validate(bytes)
        }
    }

    @Test func corruptCompressedDataWithAGoodCRCIsRefused() throws {
        for codec in [CompressionCodec.lz4, .gzip] {
            let good = try buildBatch(codec, count: 20)
            var section = recordsSection(good)
            // Keep the codec's magic/header, break what follows.
            for i in 12..<section.count { section[i] = UInt8(truncatingIfNeeded: i &* 31) }
            let bad = rebuilt(good, records: section)
            #expect(code { try validate(bad) } == .corruptCompressedData, "\(codec)")
            // Cut short: the stream ends before its end mark.
            let cut = rebuilt(good, records: Array(recordsSection(good).prefix(recordsSection(good).count / 2)))
            #expect(code { try validate(cut) } == .corruptCompressedData, "\(codec) cut")
        }
    }

    @Test func aRecordCountThatLiesIsRefused() throws {
        let good = try buildBatch(.none, count: 5)
        #expect(code { try validate(rebuilt(good, records: recordsSection(good), recordCount: 6, lastOffsetDelta: 5)) } == .badRecord)
        #expect(code { try validate(rebuilt(good, records: recordsSection(good), recordCount: 4, lastOffsetDelta: 3)) } == .badRecord)
        // A huge count in a small batch is refused before anything is sized by it.
        #expect(code { try validate(rebuilt(good, records: recordsSection(good), recordCount: 1 << 30, lastOffsetDelta: (1 << 30) - 1)) } == .badRecord)
    }

    @Test func badVarintsAndFieldsAreRefused() throws {
        let good = try buildBatch(.none, count: 3)
        var section = recordsSection(good)
        // The first record's length as an overlong varint.
        var overlong = section
        overlong.replaceSubrange(0..<1, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(code { try validate(rebuilt(good, records: overlong)) } == .badVarint)
        // A record length that runs past the section.
        var long = section
        long[0] = 0x7E
        #expect(code { try validate(rebuilt(good, records: long)) } == .badRecord)
        // Offset deltas out of sequence: the second record says 0 (its delta is byte 3 of the body
        // when the timestamp delta fits one byte).
        section = recordsSection(good)
        let secondStart = Int(section[0] >> 1) + 1
        var outOfOrder = section
        outOfOrder[secondStart + 3] = 0x00
        #expect(code { try validate(rebuilt(good, records: outOfOrder)) } == .badRecord)
        // Bytes after the last record.
        #expect(code { try validate(rebuilt(good, records: section + [0])) } == .badRecord)
    }

    @Test func decompressionBombsAreRefused() throws {
        var builder = RecordBatchBuilder(codec: .gzip)
        builder.append(key: nil, value: [UInt8](repeating: 0, count: 4 << 20), timestamp: 1)
        let bomb = try builder.build()
        #expect(bomb.readableBytes < 64 << 10)
        #expect(code { try validate(bomb, limits: .init(maxDecompressedBytes: 1 << 20)) } == .decompressedTooLarge)
        try validate(bomb, limits: .init(maxDecompressedBytes: 8 << 20))
    }

    @Test func timestampsTooFarFromTheClockAreRefused() throws {
        let now: Int64 = 1_700_000_000_000
        let batch = try buildBatch(.lz4, count: 10, baseTimestamp: now - 3_600_000)
        try validate(batch, limits: .init(timestampDifferenceMaxMillis: 7_200_000), now: now)
        #expect(code { try validate(batch, limits: .init(timestampDifferenceMaxMillis: 60_000), now: now) } == .invalidTimestamp)
        let future = try buildBatch(.none, count: 2, baseTimestamp: now + 3_600_000)
        #expect(code { try validate(future, limits: .init(timestampDifferenceMaxMillis: 60_000), now: now) } == .invalidTimestamp)
        // Log-append-time batches carry the broker's time, not the producer's: not checked.
        let appendTime = rebuilt(future, records: recordsSection(future), attributes: 0x08)
        try validate(appendTime, limits: .init(timestampDifferenceMaxMillis: 60_000), now: now)
    }

    /// Random damage to the records (CRC recomputed): the validator either refuses the
    /// batch or the batch decodes; it never accepts what a consumer cannot read.
    @Test func whatTheValidatorAcceptsAlwaysDecodes() throws {
        var rng = SeededRandom(test: "whatTheValidatorAcceptsAlwaysDecodes")
        let seed = rng.seed
        for codec in CompressionCodec.supported {
            let good = try buildBatch(.none, count: 8)
            for _ in 0..<300 {
                var section = recordsSection(good)
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    section[Int.random(in: 0..<section.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                var records = section
                if codec != .none {
                    var compressed = ByteBuffer()
                    try section.withUnsafeBytes { try Compression.compress($0, codec: codec, into: &compressed) }
                    records = Array(compressed.readableBytesView)
                }
                let batch = rebuilt(good, records: records, attributes: Int16(codec.rawValue))
                do {
                    try validate(batch)
                } catch is RecordsError {
                    continue
                }
                var reader = RecordBatchReader(batch)
                let decoded = try #require(try reader.next()).records()
                #expect(decoded.count == 8, "seed \(seed)")
            }
        }
    }
}


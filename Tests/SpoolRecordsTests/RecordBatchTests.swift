import NIOCore
import SpoolTestSupport
import SpoolRecords
import Testing

func buildBatch(_ codec: CompressionCodec, count: Int = 10, baseTimestamp: Int64 = 1_700_000_000_000) throws -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: codec)
    for i in 0..<count {
        builder.append(
            key: i % 3 == 0 ? nil : ByteBuffer(string: "key-\(i)"),
            value: ByteBuffer(string: "{\"n\":\(i),\"payload\":\"\(String(repeating: "x", count: i))\"}"),
            headers: i % 2 == 0 ? [RecordHeader(key: "h\(i)", value: "v\(i)"), RecordHeader(key: "null", value: nil)] : [],
            timestamp: baseTimestamp + Int64(i * 10))
    }
    return try builder.build()
}

@Suite struct RecordBatchTests {
    @Test(arguments: CompressionCodec.supported)
    func buildThenReadRoundTrips(codec: CompressionCodec) throws {
        let bytes = try buildBatch(codec, count: 25)
        var reader = RecordBatchReader(bytes)
        let batch = try #require(try reader.next())
        #expect(try reader.next() == nil)
        #expect(batch.header.magic == 2)
        #expect(batch.header.recordCount == 25)
        #expect(batch.header.lastOffsetDelta == 24)
        #expect(batch.header.codecBits == codec.rawValue)
        #expect(batch.header.baseTimestamp == 1_700_000_000_000)
        #expect(batch.header.maxTimestamp == 1_700_000_000_240)
        #expect(batch.header.producerId == -1)
        #expect(batch.header.totalBytes == bytes.readableBytes)
        let records = try batch.records()
        #expect(records.count == 25)
        for (i, record) in records.enumerated() {
            #expect(record.offset == Int64(i))
            #expect(record.timestamp == 1_700_000_000_000 + Int64(i * 10))
            #expect(record.key == (i % 3 == 0 ? nil : ByteBuffer(string: "key-\(i)")))
            #expect(record.value == ByteBuffer(string: "{\"n\":\(i),\"payload\":\"\(String(repeating: "x", count: i))\"}"))
            if i % 2 == 0 {
                #expect(record.headers == [RecordHeader(key: "h\(i)", value: "v\(i)"), RecordHeader(key: "null", value: nil)])
            } else {
                #expect(record.headers.isEmpty)
            }
        }
    }

    @Test func nullAndEmptyValuesAreDistinct() throws {
        var builder = RecordBatchBuilder()
        builder.append(key: [UInt8](), value: nil, timestamp: 5)
        builder.append(key: nil, value: [UInt8](), timestamp: 4)
        var reader = RecordBatchReader(try builder.build())
        let records = try #require(try reader.next()).records()
        #expect(records[0].key == ByteBuffer() && records[0].value == nil)
        #expect(records[1].key == nil && records[1].value == ByteBuffer())
        #expect(records[1].timestamp == 4)
    }

    @Test func assignsOffsetsInPlaceWithoutBreakingTheCRC() throws {
        var payload = try buildBatch(.lz4, count: 3)
        var second = try buildBatch(.none, count: 4)
        payload.writeBuffer(&second)
        var produced = try ProducedBatches.validate(payload)
        #expect(produced.batches.count == 2)
        #expect(produced.recordCount == 7)
        let next = produced.assignOffsets(startingAt: 1000, in: &payload)
        #expect(next == 1007)
        #expect(produced.batches.map(\.header.baseOffset) == [1000, 1003])
        var reader = RecordBatchReader(payload)
        let a = try #require(try reader.next())
        let b = try #require(try reader.next())
        #expect(a.header.baseOffset == 1000)
        #expect(b.header.baseOffset == 1003)
        #expect(try b.records().map(\.offset) == [1003, 1004, 1005, 1006])
    }

    @Test func flippedByteAnywhereAfterTheCRCIsDetected() throws {
        let good = try buildBatch(.gzip)
        for position in RecordBatchHeader.Position.attributes..<good.readableBytes {
            var bad = good
            bad.setInteger(bad.getInteger(at: position, as: UInt8.self)! ^ 0x01, at: position)
            var reader = RecordBatchReader(bad)
            #expect(throws: RecordsError.self, "flip at \(position)") { _ = try reader.next() }
            #expect(throws: RecordsError.self) { _ = try ProducedBatches.validate(bad) }
        }
    }

    @Test func badCRCHasItsOwnCode() throws {
        var bad = try buildBatch(.none)
        let last = bad.writerIndex - 1
        bad.setInteger(bad.getInteger(at: last, as: UInt8.self)! ^ 0x80, at: last)
        var reader = RecordBatchReader(bad)
        #expect { _ = try reader.next() } throws: { ($0 as? RecordsError)?.code == .badCRC }
    }

    @Test func truncationAtEveryByteIsAnError() throws {
        let good = try buildBatch(.lz4, count: 4)
        for cut in 0..<good.readableBytes {
            let truncated = good.getSlice(at: 0, length: cut)!
            if cut > 0 {
                var reader = RecordBatchReader(truncated)
                #expect { _ = try reader.next() } throws: { ($0 as? RecordsError)?.code == .truncated }
                var lenient = RecordBatchReader(truncated, allowPartialTail: true)
                #expect(try lenient.next() == nil)
            }
            #expect(throws: RecordsError.self) { _ = try ProducedBatches.validate(truncated) }
        }
    }

    @Test func wrongMagicAndBadLengthsAreRejected() throws {
        let good = try buildBatch(.none)
        var magic = good
        magic.setInteger(Int8(1), at: RecordBatchHeader.Position.magic)
        var reader = RecordBatchReader(magic)
        #expect { _ = try reader.next() } throws: { ($0 as? RecordsError)?.code == .badMagic }

        for length: Int32 in [-1, 0, 48] {
            var bad = good
            bad.setInteger(length, at: RecordBatchHeader.Position.batchLength)
            var r = RecordBatchReader(bad)
            #expect { _ = try r.next() } throws: { ($0 as? RecordsError)?.code == .badLength }
        }
        var tooLong = good
        tooLong.setInteger(Int32(good.readableBytes), at: RecordBatchHeader.Position.batchLength)
        var r = RecordBatchReader(tooLong)
        #expect { _ = try r.next() } throws: { ($0 as? RecordsError)?.code == .truncated }
    }

    @Test func unknownCodecInABatchIsRefusedClearly() throws {
        for id: Int16 in 5...7 {
            var bad = try buildBatch(.none)
            bad.setInteger(id, at: RecordBatchHeader.Position.attributes)
            RecordBatch.writeCRC(in: &bad, at: 0)
            var reader = RecordBatchReader(bad)
            #expect { _ = try reader.next() } throws: { ($0 as? RecordsError)?.code == .unsupportedCodec }
        }
    }

    /// Rewrites the records section with `records` and a correct CRC, so that only the record layer is wrong.
    func batchWithRecordsSection(_ records: [UInt8], count: Int32 = 1) throws -> ByteBuffer {
        var batch = try buildBatch(.none, count: Int(count))
        batch.moveWriterIndex(to: RecordBatchHeader.size)
        batch.writeBytes(records)
        batch.setInteger(Int32(batch.readableBytes - RecordBatchHeader.logOverhead), at: RecordBatchHeader.Position.batchLength)
        RecordBatch.writeCRC(in: &batch, at: 0)
        return batch
    }

    @Test func badVarintInsideARecordIsRejected() throws {
        let bad = try batchWithRecordsSection([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        var reader = RecordBatchReader(bad)
        let batch = try #require(try reader.next()) // header and CRC are fine
        #expect { _ = try batch.records() } throws: { ($0 as? RecordsError)?.code == .badVarint }
    }

    @Test func malformedRecordsAreRejected() throws {
        // Length says 50 bytes but only 3 follow.
        var reader = RecordBatchReader(try batchWithRecordsSection([0x64, 0x00, 0x00]))
        #expect { _ = try reader.next()!.records() } throws: { ($0 as? RecordsError)?.code == .badRecord }
        // A valid single record, but the header says two.
        var one = RecordBatchBuilder()
        one.append(key: nil, value: [1, 2, 3], timestamp: 0)
        let section = Array(try one.build().readableBytesView.dropFirst(RecordBatchHeader.size))
        var lying = try batchWithRecordsSection(section, count: 2)
        RecordBatch.writeCRC(in: &lying, at: 0)
        var r2 = RecordBatchReader(lying)
        #expect { _ = try r2.next()!.records() } throws: { ($0 as? RecordsError)?.code == .badVarint || ($0 as? RecordsError)?.code == .badRecord }
    }

    @Test func compressedRecordsOverTheLimitAreRefused() throws {
        var builder = RecordBatchBuilder(codec: .gzip)
        builder.append(key: nil, value: [UInt8](repeating: 7, count: 2 << 20), timestamp: 0)
        let bytes = try builder.build()
        #expect(bytes.readableBytes < 64 << 10)
        var reader = RecordBatchReader(bytes)
        let batch = try #require(try reader.next())
        #expect { _ = try batch.records(limits: .init(maxDecompressedBytes: 1 << 20)) } throws: {
            ($0 as? RecordsError)?.code == .decompressedTooLarge
        }
        #expect(try batch.records(limits: .init(maxDecompressedBytes: 4 << 20)).count == 1)
    }

    @Test func producedBatchesRejectEmptyAndInconsistentBatches() throws {
        #expect { _ = try ProducedBatches.validate(ByteBuffer()) } throws: { ($0 as? RecordsError)?.code == .truncated }
        var bad = try buildBatch(.none, count: 3)
        bad.setInteger(Int32(5), at: RecordBatchHeader.Position.lastOffsetDelta)
        RecordBatch.writeCRC(in: &bad, at: 0)
        #expect { _ = try ProducedBatches.validate(bad) } throws: { ($0 as? RecordsError)?.code == .badRecord }
    }

    @Test func garbageNeverCrashes() throws {
        var rng = SeededRandom(test: "garbageNeverCrashes")
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<200, using: &rng)
            var bytes = ByteBuffer(bytes: (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if length >= RecordBatchHeader.size, Bool.random(using: &rng) {
                // Make the shape plausible so deeper layers get exercised.
                bytes.setInteger(Int32(length - 12), at: RecordBatchHeader.Position.batchLength)
                bytes.setInteger(Int8(2), at: RecordBatchHeader.Position.magic)
                bytes.setInteger(Int16.random(in: 0...4, using: &rng), at: RecordBatchHeader.Position.attributes)
                RecordBatch.writeCRC(in: &bytes, at: 0)
            }
            var reader = RecordBatchReader(bytes)
            do {
                while let batch = try reader.next() { _ = try? batch.records() }
            } catch is RecordsError {}
        }
    }
}

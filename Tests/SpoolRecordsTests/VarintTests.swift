import NIOCore
import SpoolRecords
import Testing

@Suite struct VarintTests {
    @Test func knownEncodings() throws {
        // Kafka's zig-zag: 0→00, -1→01, 1→02, -2→03, 63→7e, -64→7f, 64→80 01, 300→d8 04.
        let cases: [(Int64, [UInt8])] = [
            (0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (63, [0x7E]), (-64, [0x7F]),
            (64, [0x80, 0x01]), (300, [0xD8, 0x04]),
            (Int64(Int32.max), [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
            (Int64(Int32.min), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (value, bytes) in cases {
            var buffer = ByteBuffer()
            Varint.write(value, to: &buffer)
            #expect(Array(buffer.readableBytesView) == bytes, "encoding of \(value)")
            #expect(Varint.size(value) == bytes.count)
            #expect(try Varint.read(from: &buffer) == value)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func roundTripsExtremes() throws {
        for value: Int64 in [.min, .max, .min + 1, .max - 1, 0, 1 << 35, -(1 << 35)] {
            var buffer = ByteBuffer()
            Varint.write(value, to: &buffer)
            #expect(buffer.readableBytes <= Varint.maxBytes64)
            #expect(try Varint.read(from: &buffer) == value)
        }
    }

    @Test func truncatedVarintIsAnError() {
        var buffer = ByteBuffer(bytes: [0x80, 0x80])
        #expect(throws: RecordsError.self) { try Varint.read(from: &buffer) }
        var empty = ByteBuffer()
        #expect { try Varint.read(from: &empty) } throws: { ($0 as? RecordsError)?.code == .badVarint }
    }

    @Test func overlongVarintIsAnError() {
        var buffer = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 11) + [0x01])
        #expect { try Varint.read(from: &buffer) } throws: { ($0 as? RecordsError)?.code == .badVarint }
        var six = ByteBuffer(bytes: [0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
        #expect { try Varint.read32(from: &six) } throws: { ($0 as? RecordsError)?.code == .badVarint }
    }

    @Test func outOf32BitRangeIsAnError() {
        var buffer = ByteBuffer()
        Varint.write(Int64(Int32.max) + 1, to: &buffer)
        #expect { try Varint.read32(from: &buffer) } throws: { ($0 as? RecordsError)?.code == .badVarint }
    }
}

@Suite struct PartitionerTests {
    @Test func murmur2MatchesKafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: [(String, Int32)] = [
            ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (key, expected) in cases {
            #expect(KafkaPartitioner.murmur2(Array(key.utf8)) == expected, "murmur2(\(key))")
        }
    }

    @Test func partitionIsStableAndInRange() {
        for i in 0..<1000 {
            let key = Array("key-\(i)".utf8)
            let p = KafkaPartitioner.partition(forKey: key, partitions: 7)
            #expect((0..<7).contains(p))
            #expect(p == KafkaPartitioner.partition(forKey: key, partitions: 7))
        }
    }
}

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

    /// Vectors computed by an independent implementation: kafka-python 2.x
    /// (`kafka.partitioner.default.murmur2`, as its DefaultPartitioner uses it:
    /// `(murmur2(key) & 0x7fffffff) % partitions`), printed with
    /// `python3 -c "from kafka.partitioner.default import murmur2; ..."` (its unsigned
    /// hash shown here as Java's signed int).
    @Test func partitionsMatchKafkaPython() {
        let cases: [(key: String, hash: Int32, of7: Int32, of100: Int32)] = [
            ("key-0", 29210041, 0, 41),
            ("key-1", 193331640, 5, 40),
            ("key-2", 852269702, 4, 2),
            ("key-3", -1839136101, 4, 47),
            ("key-4", 647367033, 5, 33),
            ("key-5", -1698326880, 4, 68),
            ("key-6", -758453868, 5, 80),
            ("key-7", 713419675, 3, 75),
            ("key-8", -1340033413, 4, 35),
            ("key-9", -1335190451, 2, 97),
            ("", 275646681, 2, 81),
            ("a", -1563381124, 5, 24),
            ("user-9972", 1786995698, 5, 98),
            ("0123456789abcdef", 1438427052, 6, 52),
        ]
        for c in cases {
            let key = Array(c.key.utf8)
            #expect(KafkaPartitioner.murmur2(key) == c.hash, "murmur2(\(c.key))")
            #expect(KafkaPartitioner.partition(forKey: key, partitions: 7) == c.of7, "\(c.key) of 7")
            #expect(KafkaPartitioner.partition(forKey: key, partitions: 100) == c.of100, "\(c.key) of 100")
        }
    }
}

import Foundation
import NIOCore
import SpoolRecords
import SpoolTestSupport
import Testing

@Suite struct CompressionTests {
    static let text = Array(String(repeating: "{\"event\":\"click\",\"user\":\"u-42\",\"path\":\"/a/b\"}\n", count: 400).utf8)

    func compress(_ bytes: [UInt8], _ codec: CompressionCodec) throws -> [UInt8] {
        var out = ByteBuffer()
        try bytes.withUnsafeBytes { try Compression.compress($0, codec: codec, into: &out) }
        return Array(out.readableBytesView)
    }

    func decompress(_ bytes: [UInt8], _ codec: CompressionCodec, max: Int = 1 << 20) throws -> [UInt8] {
        var out = ByteBuffer()
        try bytes.withUnsafeBytes { try Compression.decompress($0, codec: codec, maxBytes: max, into: &out) }
        return Array(out.readableBytesView)
    }

    @Test(arguments: CompressionCodec.supported)
    func roundTrip(codec: CompressionCodec) throws {
        for input in [Self.text, [], [0x42], (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }] {
            let packed = try compress(input, codec)
            #expect(try decompress(packed, codec, max: 1 << 20) == input)
        }
        if codec != .none {
            #expect(try compress(Self.text, codec).count < Self.text.count / 4)
        }
    }

    @Test func gzipOutputIsGzipFormat() throws {
        let packed = try compress(Self.text, .gzip)
        #expect(packed.prefix(2) == [0x1F, 0x8B])
    }

    @Test func lz4OutputIsFrameFormat() throws {
        let packed = try compress(Self.text, .lz4)
        #expect(packed.prefix(4) == [0x04, 0x22, 0x4D, 0x18]) // LZ4 frame magic 0x184D2204, little-endian
    }

    @Test(arguments: [CompressionCodec.gzip, .lz4])
    func corruptDataIsRejected(codec: CompressionCodec) throws {
        var packed = try compress(Self.text, codec)
        packed[packed.count / 2] ^= 0xFF
        packed[packed.count / 2 + 1] ^= 0x5A
        #expect { try decompress(packed, codec) } throws: { error in
            let code = (error as? RecordsError)?.code
            return code == .corruptCompressedData
        }
    }

    /// Garbage and every cut of the compressed bytes are refused. (A xerial stream cut at a
    /// chunk boundary is a shorter valid stream, as snappy-java reads it: the input here is
    /// one chunk, and the header alone is the empty stream.)
    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func garbageAndTruncationAreRejected(codec: CompressionCodec) throws {
        #expect(throws: RecordsError.self) { try decompress([1, 2, 3, 4, 5, 6, 7, 8], codec) }
        #expect(throws: RecordsError.self) { try decompress([], codec) }
        if codec == .snappy { #expect(try decompress(Self.xerialHeader, .snappy) == []) }
        let whole = try compress(Self.text, codec)
        for cut in 1..<whole.count where !(codec == .snappy && cut == 16) {
            #expect(throws: RecordsError.self, "cut at \(cut) of \(whole.count)") { try decompress(Array(whole.prefix(cut)), codec) }
        }
        // Bytes after the end of the compressed data are refused too.
        #expect(throws: RecordsError.self) { try decompress(whole + [0x00, 0x01, 0x02, 0x03, 0x04], codec) }
    }

    /// snappy and zstd (without its optional checksum) cannot notice every flipped byte; what
    /// they must do is never crash, never read or write out of bounds, and never exceed the
    /// limit. (The batch CRC and the record walk catch the rest.)
    @Test(arguments: CompressionCodec.supported)
    func damagedDataNeverCrashes(codec: CompressionCodec) throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("damagedDataNeverCrashes(\(codec)) seed \(seed)")
        var rng = SeededRandom(seed: seed)
        let whole = try compress(Array(Self.text.prefix(6000)) + (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, codec)
        for _ in 0..<500 {
            var damaged = whole
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                damaged[Int.random(in: 0..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { damaged = Array(damaged.prefix(Int.random(in: 0...damaged.count, using: &rng))) }
            do {
                #expect(try decompress(damaged, codec, max: 16_384).count <= 16_384, "seed \(seed)")
            } catch let error as RecordsError {
                #expect([.corruptCompressedData, .decompressedTooLarge].contains(error.code), "seed \(seed): \(error)")
            }
        }
    }

    @Test(arguments: CompressionCodec.supported)
    func decompressionBombIsRefused(codec: CompressionCodec) throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let packed = try compress(zeros, codec)
        #expect { try decompress(packed, codec, max: 1 << 20) } throws: { ($0 as? RecordsError)?.code == .decompressedTooLarge }
        // Exactly at the limit is fine.
        #expect(try decompress(packed, codec, max: 4 << 20).count == 4 << 20)
    }

    @Test func unknownCodecIdsAreRefused() throws {
        for id: Int16 in 0...4 {
            #expect(try CompressionCodec(attributeBits: id).rawValue == id)
        }
        for id: Int16 in 5...7 {
            #expect { try CompressionCodec(attributeBits: id) } throws: { ($0 as? RecordsError)?.code == .unsupportedCodec }
        }
    }

    // MARK: snappy

    static let xerialHeader: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]

    /// The chunks of a xerial stream: (offset of the block, its length).
    func xerialChunks(_ packed: [UInt8]) -> [(Int, Int)] {
        var chunks: [(Int, Int)] = []
        var p = Self.xerialHeader.count
        while p + 4 <= packed.count {
            let length = Int(packed[p]) << 24 | Int(packed[p + 1]) << 16 | Int(packed[p + 2]) << 8 | Int(packed[p + 3])
            chunks.append((p + 4, length))
            p += 4 + length
        }
        #expect(p == packed.count)
        return chunks
    }

    /// Spool writes what Kafka's Java client writes: snappy-java's xerial stream, 32 KiB of
    /// input per chunk, each chunk a raw snappy block.
    @Test func snappyWritesXerialFramingWith32KiBChunks() throws {
        let input = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 / 7) &* 2_654_435_761 >> 9) }
        let packed = try compress(input, .snappy)
        #expect(Array(packed.prefix(16)) == Self.xerialHeader)
        let chunks = xerialChunks(packed)
        #expect(chunks.count == (300_000 + 32_767) / 32_768)
        var joined: [UInt8] = []
        for (offset, length) in chunks {
            // Each block alone is raw snappy (the form librdkafka writes), read as such.
            let block = try decompress(Array(packed[offset..<(offset + length)]), .snappy)
            #expect(block.count == min(32_768, 300_000 - joined.count))
            joined += block
        }
        #expect(joined == input)
        // An empty input is the header alone.
        #expect(try compress([], .snappy) == Self.xerialHeader)
    }

    @Test func snappyReadsConcatenatedXerialStreams() throws {
        let a = Array(Self.text.prefix(5000)), b = Array(Self.text.suffix(7000))
        #expect(try decompress(try compress(a, .snappy) + compress(b, .snappy), .snappy) == a + b)
    }

    @Test func snappyXerialChunkLengthsAreChecked() throws {
        var packed = try compress(Self.text, .snappy)
        let (offset, _) = try #require(xerialChunks(packed).first)
        for bad: [UInt8] in [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0]] {
            packed.replaceSubrange((offset - 4)..<offset, with: bad)
            #expect { try decompress(packed, .snappy) } throws: { ($0 as? RecordsError)?.code == .corruptCompressedData }
        }
        // A header cut after its magic.
        #expect { try decompress(Array(Self.xerialHeader.prefix(12)), .snappy) } throws: { ($0 as? RecordsError)?.code == .corruptCompressedData }
    }

    /// A raw snappy block states its uncompressed length first: one that claims more than the
    /// limit is refused from that alone, before anything is allocated for it.
    @Test func snappyBlockClaimingTooMuchIsRefusedFromItsHeader() throws {
        let claimsOneGiB: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x41] // varint 1 << 30, then junk
        #expect { try decompress(claimsOneGiB, .snappy, max: 64 << 20) } throws: { ($0 as? RecordsError)?.code == .decompressedTooLarge }
        // Inside a xerial stream, the chunks' claims add up against the same limit.
        let chunk = try compress([UInt8](repeating: 7, count: 30_000), .snappy)
        let twice = chunk + Array(chunk.dropFirst(16))
        #expect(try decompress(twice, .snappy, max: 60_000).count == 60_000)
        #expect { try decompress(twice, .snappy, max: 59_999) } throws: { ($0 as? RecordsError)?.code == .decompressedTooLarge }
    }

    // MARK: zstd

    @Test func zstdWritesOneFrameThatStatesItsContentSize() throws {
        let packed = try compress(Self.text, .zstd)
        #expect(packed.prefix(4) == [0x28, 0xB5, 0x2F, 0xFD]) // zstd frame magic 0xFD2FB528, little-endian
        #expect(packed[4] & 0xC0 != 0 || packed[4] & 0x20 != 0, "the frame header carries a content size")
    }

    /// Several frames laid end to end (and so the streaming path) decode as one.
    @Test func zstdReadsConcatenatedFrames() throws {
        let a = Array(Self.text.prefix(5000)), b = Array(Self.text.suffix(7000))
        #expect(try decompress(try compress(a, .zstd) + compress(b, .zstd), .zstd) == a + b)
        // Bombs are caught on the streaming path too.
        let zeros = try compress([UInt8](repeating: 0, count: 1 << 20), .zstd)
        #expect(try decompress(zeros + zeros, .zstd, max: 2 << 20).count == 2 << 20)
        #expect { try decompress(zeros + zeros, .zstd, max: (2 << 20) - 1) } throws: { ($0 as? RecordsError)?.code == .decompressedTooLarge }
    }

    /// A frame whose stated content size is a lie is refused, whichever way it lies.
    @Test func zstdContentSizeThatLiesIsRefused() throws {
        let input = Array(Self.text.prefix(1000))
        let packed = try compress(input, .zstd)
        // Single-segment frame with a 2-byte content size (value - 256, little-endian) right after the descriptor.
        try #require(packed[4] == 0x60)
        for claimed in [999, 1001, 300] {
            var lying = packed
            lying[5] = UInt8((claimed - 256) & 0xFF)
            lying[6] = UInt8((claimed - 256) >> 8)
            #expect(throws: RecordsError.self, "claimed \(claimed)") { try decompress(lying, .zstd) }
        }
        #expect(try decompress(packed, .zstd) == input)
    }

    /// Kafka's Java client streams its zstd frames: no content size, so the limit is enforced
    /// while inflating. (Fixture written by python's zstandard stream writer.)
    @Test func zstdStreamedFrameBombIsRefused() throws {
        let url = try #require(Bundle.module.url(forResource: "zeros-4MiB-stream", withExtension: "zst", subdirectory: "Fixtures/kafka-python"))
        let packed = Array(try Data(contentsOf: url))
        #expect(packed.count < 1024)
        #expect { try decompress(packed, .zstd, max: 1 << 20) } throws: { ($0 as? RecordsError)?.code == .decompressedTooLarge }
        #expect(try decompress(packed, .zstd, max: 4 << 20) == [UInt8](repeating: 0, count: 4 << 20))
    }
}

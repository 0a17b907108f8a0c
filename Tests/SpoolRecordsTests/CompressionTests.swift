import NIOCore
import SpoolRecords
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
        // Garbage and truncation too.
        #expect(throws: RecordsError.self) { try decompress([1, 2, 3, 4, 5, 6, 7, 8], codec) }
        let whole = try compress(Self.text, codec)
        for cut in [1, 5, whole.count / 2, whole.count - 1] {
            #expect(throws: RecordsError.self) { try decompress(Array(whole.prefix(cut)), codec) }
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

    @Test func snappyAndZstdAreRecognisedButRefused() {
        for id: Int16 in [2, 4] {
            #expect { try CompressionCodec(attributeBits: id) } throws: { error in
                guard let e = error as? RecordsError else { return false }
                return e.code == .unsupportedCodec && e.message.contains("not supported")
            }
        }
        #expect { try CompressionCodec(attributeBits: 5) } throws: { ($0 as? RecordsError)?.code == .unsupportedCodec }
        #expect(throws: RecordsError.self) { try compress([1], .zstd) }
        #expect(throws: RecordsError.self) { try compress([1], .snappy) }
    }
}

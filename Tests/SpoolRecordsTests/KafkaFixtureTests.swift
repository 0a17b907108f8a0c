import Foundation
import NIOCore
import SpoolRecords
import Testing

/// Batches written by kafka-python (see Fixtures/README.md) must parse in Spool
/// exactly as kafka-python described them.
@Suite struct KafkaFixtureTests {
    struct ExpectedHeader: Decodable { var key: String; var value: String? }
    struct ExpectedRecord: Decodable {
        var offset: Int64
        var timestamp: Int64
        var key: String?
        var value: String?
        var headers: [ExpectedHeader]
    }

    static func hex(_ buffer: ByteBuffer?) -> String? {
        buffer.map { $0.readableBytesView.map { String(format: "%02x", $0) }.joined() }
    }

    static func fixture(_ name: String, _ ext: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/kafka-python"))
        return try Data(contentsOf: url)
    }

    /// Each file is named by its codec, then optionally by a framing (`snappy-raw`, `zstd-stream`).
    @Test(arguments: ["none", "gzip", "snappy", "lz4", "zstd", "snappy-raw", "zstd-stream"])
    func kafkaPythonBatchesParse(fixture: String) throws {
        let bytes = ByteBuffer(bytes: try Self.fixture(fixture, "bin"))
        let expected = try JSONDecoder().decode([ExpectedRecord].self, from: try Self.fixture(fixture, "json"))
        let codec = try #require(CompressionCodec(name: String(fixture.prefix { $0 != "-" })))
        var reader = RecordBatchReader(bytes)
        var got: [Record] = []
        var codecs: [CompressionCodec] = []
        while let batch = try reader.next() {
            codecs.append(batch.codec)
            got += try batch.records()
        }
        // kafka-python keeps a batch uncompressed when compressing does not make it smaller
        // (the small first batch); the large second one is always compressed. The re-framed
        // variants compress both.
        #expect(codecs.count == 2)
        #expect(codecs.last == codec)
        if fixture.contains("-") { #expect(codecs.first == codec) }
        #expect(got.count == expected.count)
        for (record, want) in zip(got, expected) {
            #expect(record.offset == want.offset)
            #expect(record.timestamp == want.timestamp)
            #expect(Self.hex(record.key) == want.key)
            #expect(Self.hex(record.value) == want.value)
            #expect(record.headers.map(\.key) == want.headers.map(\.key))
            #expect(record.headers.map { Self.hex($0.value) } == want.headers.map(\.value))
        }
        // The broker's produce-path validation accepts them too: header and CRC, then every record.
        let produced = try ProducedBatches.validate(bytes)
        #expect(produced.recordCount == Int64(expected.count))
        var validator = RecordBatchValidator()
        try validator.validate(bytes, produced, limits: .init(), nowMillis: 1_700_000_000_000)
        // And refuses them when the limit is below what they inflate to.
        #expect { try validator.validate(bytes, produced, limits: .init(maxDecompressedBytes: 1024), nowMillis: 1_700_000_000_000) } throws: {
            ($0 as? RecordsError)?.code == .decompressedTooLarge
        }
    }
}

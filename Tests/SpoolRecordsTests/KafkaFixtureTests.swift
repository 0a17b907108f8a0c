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

    @Test(arguments: ["none", "gzip", "lz4"])
    func kafkaPythonBatchesParse(codec: String) throws {
        let bytes = ByteBuffer(bytes: try Self.fixture(codec, "bin"))
        let expected = try JSONDecoder().decode([ExpectedRecord].self, from: try Self.fixture(codec, "json"))
        var reader = RecordBatchReader(bytes)
        var got: [Record] = []
        var codecs: [CompressionCodec] = []
        while let batch = try reader.next() {
            codecs.append(batch.codec)
            got += try batch.records()
        }
        // kafka-python keeps a batch uncompressed when compressing does not make it smaller
        // (the small first batch); the large second one is always compressed.
        #expect(codecs.count == 2)
        #expect(codecs.last == CompressionCodec(name: codec))
        #expect(got.count == expected.count)
        for (record, want) in zip(got, expected) {
            #expect(record.offset == want.offset)
            #expect(record.timestamp == want.timestamp)
            #expect(Self.hex(record.key) == want.key)
            #expect(Self.hex(record.value) == want.value)
            #expect(record.headers.map(\.key) == want.headers.map(\.key))
            #expect(record.headers.map { Self.hex($0.value) } == want.headers.map(\.value))
        }
        // The broker's produce-path validation accepts them too.
        let produced = try ProducedBatches.validate(bytes)
        #expect(produced.recordCount == Int64(expected.count))
    }
}

import SpoolProtocol
import SpoolRecords
import Testing

@testable import SpoolClient

/// The producer's settings are the client's own types, parsed from Kafka's spellings and
/// mapped onto the wire and the record batches.
@Suite struct ProducerSettingsTests {
    @Test func acksParseKafkasSpellingsAndMapOntoTheWire() {
        #expect(ProducerAcks(name: "0") == ProducerAcks.none)
        #expect(ProducerAcks(name: "1") == .leader)
        #expect(ProducerAcks(name: "all") == .all && ProducerAcks(name: "-1") == .all && ProducerAcks(name: "ALL") == .all)
        #expect(ProducerAcks(name: "2") == nil && ProducerAcks(name: "") == nil)
        for acks in ProducerAcks.allCases { #expect(ProducerAcks(name: acks.description) == acks) }
        #expect(ProducerAcks.allCases.map(\.wire) == [Spool_V1_Acks.none, .leader, .all])
        #expect(ProducerConfig().acks == .leader)
    }

    /// Whatever codecs this build supports (another may be added): each one has a
    /// `CompressionType` by its name, and no unsupported codec has one.
    @Test func compressionTypesAreTheSupportedCodecs() {
        for codec in CompressionCodec.allCases {
            let type = CompressionType(name: codec.description)
            #expect((type != nil) == CompressionCodec.supported.contains(codec), "\(codec)")
            #expect(type.map { $0.codec == codec && $0.name == codec.description } ?? true)
        }
        #expect(CompressionType.supported.map(\.codec) == CompressionCodec.supported)
        #expect(CompressionType(name: "brotli") == nil)
        #expect([CompressionType.none, .gzip, .snappy, .lz4, .zstd].map(\.name) == ["none", "gzip", "snappy", "lz4", "zstd"])
        #expect(ProducerConfig().compression == .lz4)
    }
}

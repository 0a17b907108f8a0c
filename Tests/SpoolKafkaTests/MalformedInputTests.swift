import NIOCore
import SpoolTestSupport
import Testing

@testable import SpoolKafka

/// Hostile lengths and counts fail fast with a typed error and no large allocation.
@Suite struct MalformedInputTests {
    func decodeError<M: KafkaMessage>(_: M.Type, _ bytes: [UInt8], version: Int16) -> KafkaDecodingError.Code? {
        var buffer = ByteBuffer(bytes: bytes)
        do {
            _ = try M(from: &buffer, version: version)
            return nil
        } catch let error as KafkaDecodingError {
            return error.code
        } catch {
            Issue.record("untyped error \(error)")
            return nil
        }
    }

    @Test func absurdArrayCounts() {
        // Metadata v1: topics count 2^31-1 in a 4-byte body.
        #expect(decodeError(MetadataRequest.self, [0x7F, 0xFF, 0xFF, 0xFF], version: 1) == .invalidLength)
        // Compact count 2^32-2 (unsigned varint 0xFFFFFFFF) in v9.
        #expect(decodeError(MetadataRequest.self, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], version: 9) == .invalidLength)
        // Produce v3: topic count larger than the bytes left, even by one.
        var produce: [UInt8] = [0xFF, 0xFF, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10]  // txn id null, acks 1, timeout
        produce += [0x00, 0x00, 0x00, 0x03, 0x00, 0x00]  // 3 topics but only 2 bytes follow
        #expect(decodeError(ProduceRequest.self, produce, version: 3) == .invalidLength)
    }

    @Test func negativeLengths() {
        // Metadata v0 does not allow a null array; -2 is never valid.
        #expect(decodeError(MetadataRequest.self, [0xFF, 0xFF, 0xFF, 0xFF], version: 0) == .unexpectedNull)
        #expect(decodeError(MetadataRequest.self, [0xFF, 0xFF, 0xFF, 0xFE], version: 1) == .invalidLength)
        // A topic name of length -5.
        #expect(decodeError(MetadataRequest.self, [0x00, 0x00, 0x00, 0x01, 0xFF, 0xFB], version: 1) == .invalidLength)
        // Records with a length beyond the input.
        var produce: [UInt8] = [0xFF, 0xFF, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x74]
        produce += [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x7F, 0x00, 0x00, 0x00, 0x01]
        #expect(decodeError(ProduceRequest.self, produce, version: 3) == .invalidLength)
    }

    @Test func overlongVarintsAndTags() {
        // Six continuation bytes: an unsigned varint over 32 bits.
        #expect(decodeError(ApiVersionsRequest.self, [0x80, 0x80, 0x80, 0x80, 0x80, 0x01], version: 3) == .varintTooLong)
        // A tag count far beyond the bytes left.
        #expect(decodeError(ApiVersionsRequest.self, [0x01, 0x01, 0xFF, 0xFF, 0x03], version: 3) == .invalidLength)
        // A tagged field whose size runs past the end.
        #expect(decodeError(ApiVersionsRequest.self, [0x01, 0x01, 0x01, 0x05, 0x10, 0x00], version: 3) == .invalidLength)
    }

    @Test func unknownApiKeyAndUnsupportedVersion() throws {
        var reader = KafkaReader(ByteBuffer(bytes: [0x03, 0xE7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0xFF, 0xFF]))
        let header = try KafkaRequestHeader.decode(from: &reader)
        #expect(header.api == nil && !header.isSupported && header.correlationId == 42)
        let fetch13 = KafkaRequestHeader(apiKey: 1, apiVersion: 13, correlationId: 1, clientId: nil)
        #expect(fetch13.api == .fetch && !fetch13.isSupported)
        let answer = KafkaResponseFrame.unsupportedVersion(correlationId: 42)
        #expect(Array(answer.bytes.readableBytesView) == [0, 0, 0, 6, 0, 0, 0, 42, 0, 35])
    }

    /// Random garbage never crashes a decoder; every failure is typed.
    @Test func randomGarbage() {
        var rng = SeededRandom(test: "MalformedInputTests/randomGarbage")
        let seed = rng.seed
        for _ in 0..<2000 {
            let count = Int(rng.next() % 64)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if count > 4 && rng.next() % 2 == 0 { bytes[0] = 0x7F }  // large counts up front
            for api in KafkaApiKey.allCases {
                let version = api.supportedVersions.randomElement(using: &rng)!
                var reader = KafkaReader(ByteBuffer(bytes: bytes))
                do {
                    _ = try KafkaRequest.decode(apiKey: api, version: version, from: &reader)
                } catch is KafkaDecodingError {
                } catch {
                    Issue.record("untyped error \(error) (seed \(seed))")
                }
            }
        }
    }
}


import NIOCore
import Testing

@testable import SpoolKafka

/// Encodes `message` at `version`, decodes it back, and checks equality and that
/// decoding consumed exactly the encoded bytes. Returns the encoding.
@discardableResult
func roundTrip<M: KafkaMessage>(_ message: M, version: Int16) throws -> ByteBuffer {
    var encoded = ByteBuffer()
    message.write(to: &encoded, version: version)
    var input = encoded
    let decoded = try M(from: &input, version: version)
    #expect(decoded == message, "\(M.self) v\(version) did not round-trip")
    #expect(input.readableBytes == 0, "\(M.self) v\(version) left \(input.readableBytes) bytes")
    return encoded
}

/// Decodes every strict prefix of `encoded`; each must throw a typed error.
func expectEveryTruncationThrows<M: KafkaMessage>(_: M.Type, _ encoded: ByteBuffer, version: Int16) {
    for length in 0..<encoded.readableBytes {
        var prefix = encoded.getSlice(at: encoded.readerIndex, length: length)!
        do {
            _ = try M(from: &prefix, version: version)
            Issue.record("\(M.self) v\(version) decoded from \(length) of \(encoded.readableBytes) bytes")
        } catch let error as KafkaDecodingError {
            #expect(error.code == .truncated || error.code == .invalidLength, "\(error)")
        } catch {
            Issue.record("untyped error \(error)")
        }
    }
}

@Suite struct RoundTripTests {
    /// Every API, at every supported version, with nullable fields set and null.
    @Test(arguments: KafkaApiKey.allCases)
    func everyVersionRoundTrips(api: KafkaApiKey) throws {
        var checked = 0
        for version in api.supportedVersions {
            for nulls in [false, true] {
                try withSamples(api, version: version, nulls: nulls) { message in
                    try roundTrip(message, version: version)
                    checked += 1
                }
            }
        }
        #expect(checked == 4 * api.supportedVersions.count)
    }

    /// Every strict prefix of every encoding fails with a typed error, never a crash.
    @Test(arguments: KafkaApiKey.allCases)
    func truncatedAtEveryByteThrows(api: KafkaApiKey) throws {
        for version in api.supportedVersions {
            withSamples(api, version: version, nulls: false) { message in
                func check<M: KafkaMessage>(_ m: M) {
                    var encoded = ByteBuffer()
                    m.write(to: &encoded, version: version)
                    expectEveryTruncationThrows(M.self, encoded, version: version)
                }
                check(message)
            }
        }
    }

    /// Fields a version lacks are not written, and decode to their schema defaults.
    @Test func absentFieldsTakeDefaults() throws {
        var response = MetadataResponse(throttleTimeMs: 5, clusterId: "c", controllerId: 3)
        response.topics = [.init(name: "t", topicAuthorizedOperations: 7)]
        var buffer = ByteBuffer()
        response.write(to: &buffer, version: 1)
        let decoded = try MetadataResponse(from: &buffer, version: 1)
        #expect(decoded.throttleTimeMs == 0)  // v3+
        #expect(decoded.clusterId == nil)  // v2+, default null
        #expect(decoded.controllerId == 3)
        #expect(decoded.topics[0].topicAuthorizedOperations == Int32.min)  // v8+, default INT32_MIN
    }
}

import NIOCore
import Testing

@testable import SpoolKafka

/// Byte-exact encodings derived by hand from the protocol's field lists.
@Suite struct WireVectorTests {
    func bytes<M: KafkaMessage>(_ message: M, version: Int16) -> [UInt8] {
        var buffer = ByteBuffer()
        message.write(to: &buffer, version: version)
        return Array(buffer.readableBytesView)
    }

    @Test func apiVersionsV0() throws {
        #expect(bytes(ApiVersionsRequest(), version: 0) == [])
        let response = ApiVersionsResponse(apiKeys: [.init(apiKey: 18, minVersion: 0, maxVersion: 3)])
        let expected: [UInt8] = [
            0x00, 0x00,  // error code
            0x00, 0x00, 0x00, 0x01,  // array of 1
            0x00, 0x12, 0x00, 0x00, 0x00, 0x03,  // ApiVersions 0..3
        ]
        #expect(bytes(response, version: 0) == expected)
        try roundTrip(response, version: 0)
    }

    @Test func apiVersionsV3() throws {
        let request = ApiVersionsRequest(clientSoftwareName: "kcat", clientSoftwareVersion: "1.7")
        #expect(bytes(request, version: 3) == [0x05, 0x6B, 0x63, 0x61, 0x74, 0x04, 0x31, 0x2E, 0x37, 0x00])
        let response = ApiVersionsResponse(apiKeys: [.init(apiKey: 18, minVersion: 0, maxVersion: 3)], throttleTimeMs: 0)
        let expected: [UInt8] = [
            0x00, 0x00,  // error code
            0x02,  // compact array of 1
            0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00,  // ApiVersions 0..3, empty tag section
            0x00, 0x00, 0x00, 0x00,  // throttle time
            0x00,  // tag section: default-valued tagged fields are NOT written (pitfall 2)
        ]
        #expect(bytes(response, version: 3) == expected)
    }

    @Test func nonDefaultTaggedFieldIsWritten() throws {
        let response = ApiVersionsResponse(zkMigrationReady: true)
        #expect(bytes(response, version: 3) == [0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x01, 0x01])
        try roundTrip(response, version: 3)
    }

    @Test func unknownTagsAreSkipped() throws {
        // ApiVersions v3 request with two unknown tags (7: 3 bytes, 9: 0 bytes) after the fields.
        var buffer = ByteBuffer(bytes: [0x02, 0x61, 0x02, 0x62, 0x02, 0x07, 0x03, 0xAA, 0xBB, 0xCC, 0x09, 0x00])
        let request = try ApiVersionsRequest(from: &buffer, version: 3)
        #expect(request == ApiVersionsRequest(clientSoftwareName: "a", clientSoftwareVersion: "b"))
        #expect(buffer.readableBytes == 0)
    }

    @Test func metadataRequests() throws {
        let request = MetadataRequest(topics: [.init(name: "a")])
        #expect(bytes(request, version: 0) == [0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x61])
        #expect(bytes(request, version: 4) == [0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x61, 0x01])
        // v9: compact array, compact string, topic tags, allowAutoTopicCreation,
        // includeClusterAuthorizedOperations (v8-10), includeTopicAuthorizedOperations, tags.
        #expect(bytes(request, version: 9) == [0x02, 0x02, 0x61, 0x00, 0x01, 0x00, 0x00, 0x00])
        // v1+: null topics = all topics.
        #expect(bytes(MetadataRequest(topics: nil), version: 1) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(bytes(MetadataRequest(topics: nil), version: 9) == [0x00, 0x01, 0x00, 0x00, 0x00])
    }

    @Test func metadataResponseV1() throws {
        let response = MetadataResponse(
            brokers: [.init(nodeId: 1, host: "h", port: 9092, rack: nil)],
            controllerId: 1,
            topics: [.init(errorCode: 0, name: "t", isInternal: false, partitions: [
                .init(errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1])
            ])]
        )
        let expected: [UInt8] = [
            0x00, 0x00, 0x00, 0x01,  // brokers: 1
            0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x68, 0x00, 0x00, 0x23, 0x84, 0xFF, 0xFF,  // node 1, "h", 9092, rack null
            0x00, 0x00, 0x00, 0x01,  // controller id
            0x00, 0x00, 0x00, 0x01,  // topics: 1
            0x00, 0x00, 0x00, 0x01, 0x74, 0x00,  // error, "t", not internal
            0x00, 0x00, 0x00, 0x01,  // partitions: 1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // error, index 0, leader 1
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,  // replicas [1]
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,  // isr [1]
        ]
        #expect(bytes(response, version: 1) == expected)
        try roundTrip(response, version: 1)
    }

    @Test func requestHeaders() throws {
        var writer = KafkaWriter()
        KafkaRequestHeader(apiKey: 3, apiVersion: 9, correlationId: 7, clientId: "c").write(to: &writer)
        // v2 header: int16-prefixed client id even though Metadata v9 is flexible, then a tag section.
        #expect(Array(writer.buffer.readableBytesView) == [0x00, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x63, 0x00])
        var reader = KafkaReader(writer.buffer)
        let header = try KafkaRequestHeader.decode(from: &reader)
        #expect(header.api == .metadata && header.isSupported && header.clientId == "c")
        try KafkaRequestHeader.skipTagSection(from: &reader)
        #expect(reader.remaining == 0)
    }

    @Test func responseFrames() throws {
        // ApiVersions v3: header v0 (no tag byte) even though the body is flexible.
        let api = KafkaResponseFrame.encode(ApiVersionsResponse(), correlationId: 5, api: .apiVersions, version: 3)
        #expect(Array(api.bytes.readableBytesView) == [0, 0, 0, 12, 0, 0, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0])
        // Metadata v9: header v1 (with a tag section).
        let meta = KafkaResponseFrame.encode(MetadataResponse(), correlationId: 5, api: .metadata, version: 9)
        #expect(Array(meta.bytes.readableBytesView.prefix(9)) == [0, 0, 0, 21, 0, 0, 0, 5, 0])
        #expect(Int(meta.sizeField) == meta.bytes.readableBytes - 4)
    }
}

@Suite struct WriterLimitTests {
    @Test func overlongStringsAreCutAtACharacterBoundary() throws {
        let long = String(repeating: "é", count: 20_000)  // 40,000 UTF-8 bytes
        var writer = KafkaWriter()
        writer.writeString(long, compact: false)
        var reader = KafkaReader(writer.buffer)
        let read = try reader.readString(compact: false)
        #expect(read.utf8.count == 32_766 && read == String(repeating: "é", count: 16_383))
        #expect(reader.remaining == 0)
    }
}

import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import SpoolKafka
import SpoolBroker

@Suite struct KafkaFrameDecoderTests {
    func frame(_ body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(body.count))
        buffer.writeBytes(body)
        return buffer
    }

    @Test func verifier() throws {
        let a: [UInt8] = [0, 18, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF]
        let b: [UInt8] = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x63, 0xFF, 0xFF, 0xFF, 0xFF]
        let pairs: [(ByteBuffer, [ByteBuffer])] = [
            (frame(a), [ByteBuffer(bytes: a)]),
            (frame(b), [ByteBuffer(bytes: b)]),
            ({ var x = frame(a); x.writeImmutableBuffer(frame(b)); return x }(), [ByteBuffer(bytes: a), ByteBuffer(bytes: b)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { KafkaFrameDecoder(maxFrameBytes: 1 << 10) }
    }

    @Test func oversizedFrameRefusedFromItsLengthAlone() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(1 << 30))  // 1 GiB announced, 4 bytes present
        #expect(throws: KafkaDecodingError.self) {
            _ = try KafkaFrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: 1 << 20)
        }
        var negative = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xF0])
        do {
            _ = try KafkaFrameDecoder.decodeFrame(from: &negative, maxFrameBytes: 1 << 20)
            Issue.record("negative size accepted")
        } catch let error as KafkaDecodingError {
            #expect(error.code == .invalidFrameSize)
        }
        var tiny = frame([0, 1, 2])
        #expect(throws: KafkaDecodingError.self) { _ = try KafkaFrameDecoder.decodeFrame(from: &tiny, maxFrameBytes: 1 << 20) }
    }

    @Test func channelClosesOnBadFrame() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 64)))
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(65))
        #expect(throws: KafkaDecodingError.self) { try channel.writeInbound(buffer) }
        _ = try? channel.finish()
    }
}

/// Fetch responses whose records are sent afterwards (sendfile) have the right prefixes.
@Suite struct DeferredRecordsTests {
    func fetchResponse(_ records: [KafkaRecords?]) -> FetchResponse {
        FetchResponse(responses: [.init(topic: "t", partitions: records.enumerated().map { index, records in
            .init(partitionIndex: Int32(index), highWatermark: 10, records: records)
        })])
    }

    @Test(arguments: [Int16(4), 11, 12])
    func deferredSpansSpliceIntoTheSameBytes(version: Int16) throws {
        let payloads: [[UInt8]] = [Array(repeating: 0xA1, count: 100), [], Array(repeating: 0xB2, count: 300)]
        let deferred = fetchResponse(payloads.map { .deferred(byteCount: $0.count) })
        let frame = KafkaResponseFrame.encode(deferred, correlationId: 9, api: .fetch, version: version)
        #expect(frame.deferredSpans.map(\.byteCount) == [100, 300])  // an empty span has no splice
        #expect(Int(frame.sizeField) == frame.bytes.readableBytes - 4 + 400)

        // Splice the payloads in where the spans say, as the listener does with FileRegions.
        var wire = ByteBuffer()
        var cursor = frame.bytes.readerIndex
        var spanPayloads = payloads.filter { !$0.isEmpty }.makeIterator()
        for span in frame.deferredSpans {
            wire.writeImmutableBuffer(frame.bytes.getSlice(at: cursor, length: span.position - cursor)!)
            wire.writeBytes(spanPayloads.next()!)
            cursor = span.position
        }
        wire.writeImmutableBuffer(frame.bytes.getSlice(at: cursor, length: frame.bytes.writerIndex - cursor)!)
        #expect(wire.readableBytes == Int(frame.sizeField) + 4)

        // It decodes to the same response with the bytes in place.
        #expect(wire.readInteger(as: Int32.self) == frame.sizeField)
        #expect(wire.readInteger(as: Int32.self) == 9)
        if version >= 12 { #expect(wire.readInteger(as: UInt8.self) == 0) }
        let decoded = try FetchResponse(from: &wire, version: version)
        #expect(decoded == fetchResponse(payloads.map { .buffer(ByteBuffer(bytes: $0)) }))
        #expect(wire.readableBytes == 0)
    }
}

/// Unfinished requests draw on the broker-wide inbound budget.
@Suite struct KafkaFrameBudgetTests {
    func budgets(inboundMax: Int) -> ResourceBudgets {
        var config = BudgetConfig()
        config.inboundBufferedBytesMax = inboundMax
        config.inboundFrameBytesGuaranteed = 64 << 10
        return ResourceBudgets(config: config, descriptorCacheSize: 16)
    }

    @Test func anUnfinishedRequestHoldsItsSizeUntilComplete() throws {
        let budgets = budgets(inboundMax: 1 << 20)
        let budget = try #require(budgets.admitConnection())
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(budget: budget)))
        var head = ByteBuffer()
        head.writeInteger(Int32(512 << 10))
        head.writeRepeatingByte(0, count: 100)
        try channel.writeInbound(head)
        #expect(budgets.snapshot.inboundBufferedBytes == (512 << 10) + 4, "the whole request is reserved")
        var rest = ByteBuffer()
        rest.writeRepeatingByte(0, count: (512 << 10) - 100)
        try channel.writeInbound(rest)
        let frame = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(frame.readableBytes == 512 << 10)
        #expect(budgets.snapshot.inboundBufferedBytes == 0, "released once complete")
        _ = try channel.finish()
    }

    @Test func aRequestOverTheBudgetIsRefused() throws {
        let budgets = budgets(inboundMax: 1 << 20)
        let budget = try #require(budgets.admitConnection())
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(budget: budget)))
        var head = ByteBuffer()
        head.writeInteger(Int32(2 << 20))  // under max.request.bytes, over the inbound budget
        head.writeRepeatingByte(0, count: 100)
        do {
            try channel.writeInbound(head)
            Issue.record("a 2 MiB request was buffered under a 1 MiB budget")
        } catch let error as KafkaDecodingError {
            #expect(error.code == .inboundBudgetExhausted)
        }
        #expect(budgets.snapshot.inboundBufferedBytes == 0)
        _ = try? channel.finish()
    }
}

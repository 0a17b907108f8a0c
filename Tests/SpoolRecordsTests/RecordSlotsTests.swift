import NIOCore
import SpoolRecords
import Testing

/// Record slots (what consumers build their record views on) agree with the record decoder.
@Suite struct RecordSlotsTests {
    @Test(arguments: CompressionCodec.supported)
    func slotsPointAtTheSameFieldsTheDecoderReturns(codec: CompressionCodec) throws {
        var reader = RecordBatchReader(try buildBatch(codec, count: 40))
        let batch = try #require(try reader.next())
        let decoded = try batch.records()
        let slots = try batch.recordSlots()
        #expect(slots.slots.count == 40)
        func field(_ start: Int32, _ length: Int32) -> ByteBuffer? {
            length < 0 ? nil : slots.records.getSlice(at: slots.records.readerIndex + Int(start), length: Int(length))
        }
        for (record, slot) in zip(decoded, slots.slots) {
            #expect(slot.offset == record.offset)
            #expect(slot.timestamp == record.timestamp)
            #expect(field(slot.keyStart, slot.keyLength) == record.key)
            #expect(field(slot.valueStart, slot.valueLength) == record.value)
            #expect(Int(slot.headerCount) == record.headers.count)
        }
    }

    @Test func slotsStartAtTheRequestedOffset() throws {
        var reader = RecordBatchReader(try buildBatch(.lz4, count: 10))
        let batch = try #require(try reader.next())
        #expect(try batch.recordSlots(from: 7).slots.map(\.offset) == [7, 8, 9])
        #expect(try batch.recordSlots(from: 10).slots.isEmpty)
    }

    @Test func aRecordThatOverrunsItsBatchIsRefused() throws {
        // A record length one byte too long: the walk must refuse it, not read past the end.
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(key: nil, value: ByteBuffer(string: "abc"), timestamp: 1)
        var bytes = try builder.build()
        let lengthAt = bytes.readerIndex + RecordBatchHeader.size
        let length = bytes.getInteger(at: lengthAt, as: UInt8.self)!
        bytes.setInteger(length + 2, at: lengthAt) // zig-zag: +2 is one more byte
        RecordBatch.writeCRC(in: &bytes, at: bytes.readerIndex)
        var reader = RecordBatchReader(bytes)
        let batch = try #require(try reader.next())
        #expect(throws: RecordsError.self) { _ = try batch.recordSlots() }
    }
}

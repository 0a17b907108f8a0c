import NIOCore
import SpoolRecords

/// One fetched batch, decompressed once, with the slots of its undelivered records.
/// Every `ConsumerRecord` of the batch points here: no per-record allocation.
@usableFromInline
final class DecodedBatch: Sendable {
    @usableFromInline let cursor: PartitionCursor
    @usableFromInline let generation: Int
    @usableFromInline let records: ByteBuffer
    @usableFromInline let slots: [RecordSlot]

    init(cursor: PartitionCursor, generation: Int, decoded: RecordSlots) {
        self.cursor = cursor
        self.generation = generation
        self.records = decoded.records
        self.slots = decoded.slots
    }

    @inlinable
    func slice(start: Int32, length: Int32) -> ByteBuffer? {
        length < 0 ? nil : records.getSlice(at: records.readerIndex + Int(start), length: Int(length))
    }
}

/// A record as a consumer sees it: a view over its batch's decompressed bytes (key,
/// value and headers are read in place when asked for).
public struct ConsumerRecord: Sendable {
    @usableFromInline let batch: DecodedBatch
    @usableFromInline let index: Int

    @inlinable init(batch: DecodedBatch, index: Int) {
        self.batch = batch
        self.index = index
    }

    @inlinable var slot: RecordSlot { batch.slots[index] }

    @inlinable public var topic: String { batch.cursor.topic }
    @inlinable public var partition: Int32 { batch.cursor.partition }
    @inlinable public var offset: Int64 { slot.offset }
    /// Milliseconds since the Unix epoch.
    @inlinable public var timestamp: Int64 { slot.timestamp }
    /// nil for a null key; an empty buffer for an empty one.
    @inlinable public var key: ByteBuffer? { let s = slot; return batch.slice(start: s.keyStart, length: s.keyLength) }
    /// nil for a null value (a tombstone).
    @inlinable public var value: ByteBuffer? { let s = slot; return batch.slice(start: s.valueStart, length: s.valueLength) }
    /// Key length in bytes, nil for a null key.
    @inlinable public var keyLength: Int? { let l = slot.keyLength; return l < 0 ? nil : Int(l) }
    /// Value length in bytes, nil for a null value.
    @inlinable public var valueLength: Int? { let l = slot.valueLength; return l < 0 ? nil : Int(l) }

    /// The value's bytes in place (nil for a null value), without making a buffer.
    @inlinable public func withUnsafeValueBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let s = slot
        guard s.valueLength >= 0 else { return nil }
        return try batch.records.withUnsafeReadableBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[Int(s.valueStart)..<Int(s.valueStart) + Int(s.valueLength)]))
        }
    }

    /// The key's bytes in place (nil for a null key).
    @inlinable public func withUnsafeKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let s = slot
        guard s.keyLength >= 0 else { return nil }
        return try batch.records.withUnsafeReadableBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[Int(s.keyStart)..<Int(s.keyStart) + Int(s.keyLength)]))
        }
    }

    /// The record's headers, decoded now (the batch was checked when it was fetched).
    public var headers: [RecordHeader] {
        let s = slot
        guard s.headerCount > 0 else { return [] }
        var body = batch.records
        body.moveReaderIndex(forwardBy: Int(s.headersStart))
        var out: [RecordHeader] = []
        out.reserveCapacity(Int(s.headerCount))
        for _ in 0..<s.headerCount {
            guard let keyLength = try? Varint.read(from: &body), keyLength >= 0,
                  let key = body.readString(length: Int(keyLength)),
                  let valueLength = try? Varint.read(from: &body) else { break }
            out.append(RecordHeader(key: key, value: valueLength < 0 ? nil : body.readSlice(length: Int(valueLength))))
        }
        return out
    }
}

/// What one `poll()` returned: runs of records from fetched batches, in offset order
/// per partition. Iterating it allocates nothing per record.
public struct ConsumerRecords: Sequence, Sendable {
    @usableFromInline let runs: [(batch: DecodedBatch, range: Range<Int>)]
    /// Number of records.
    public let count: Int

    @usableFromInline init(runs: [(batch: DecodedBatch, range: Range<Int>)]) {
        self.runs = runs
        self.count = runs.reduce(0) { $0 + $1.range.count }
    }

    public var isEmpty: Bool { count == 0 }
    public var underestimatedCount: Int { count }

    public struct Iterator: IteratorProtocol {
        @usableFromInline let runs: [(batch: DecodedBatch, range: Range<Int>)]
        @usableFromInline var run = 0
        @usableFromInline var index: Int
        @usableFromInline var end: Int

        @inlinable init(runs: [(batch: DecodedBatch, range: Range<Int>)]) {
            self.runs = runs
            index = runs.first?.range.lowerBound ?? 0
            end = runs.first?.range.upperBound ?? 0
        }

        @inlinable public mutating func next() -> ConsumerRecord? {
            while index == end {
                run += 1
                guard run < runs.count else { return nil }
                index = runs[run].range.lowerBound
                end = runs[run].range.upperBound
            }
            defer { index += 1 }
            return ConsumerRecord(batch: runs[run].batch, index: index)
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(runs: runs) }
}

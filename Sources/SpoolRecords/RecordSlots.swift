import NIOCore

/// Where one record of a decompressed batch lies: its offset and timestamp, and the
/// positions of its key, value and headers in the batch's records buffer. Consumers
/// hand out views built on slots, so reading a batch allocates one slot array, not one
/// object per record.
public struct RecordSlot: Sendable, Hashable {
    public var offset: Int64
    /// Milliseconds since the Unix epoch.
    public var timestamp: Int64
    /// Position relative to the records buffer's reader index.
    public var keyStart: Int32
    /// -1 for a null key (an empty key has length 0).
    public var keyLength: Int32
    public var valueStart: Int32
    /// -1 for a null value.
    public var valueLength: Int32
    /// Position of the first header (relative to the reader index).
    public var headersStart: Int32
    public var headerCount: Int32
}

/// A batch's decompressed records and the slots of the records from a given offset on.
public struct RecordSlots: Sendable {
    /// The decompressed records section.
    public let records: ByteBuffer
    /// The records at or after `from`, in offset order.
    public let slots: [RecordSlot]
}

extension RecordBatch {
    /// Decompresses the batch once and walks every record (with the checks of
    /// `RecordDecoder`), keeping slots for the records at or after `from`.
    public func recordSlots(from: Int64 = .min, limits: RecordDecodingLimits = .default) throws -> RecordSlots {
        let records = try decompressedRecords(limits: limits)
        let count = Int(header.recordCount)
        // Every record takes at least 7 bytes; a larger count is a lie that must not drive allocations.
        guard count <= records.readableBytes / RecordDecoder.minRecordBytes else {
            throw RecordsError(.badRecord, "header claims \(header.recordCount) records in \(records.readableBytes) bytes")
        }
        precondition(records.readableBytes <= Int(Int32.max), "records section over 2 GiB")
        let header = self.header
        let slots = try records.withUnsafeReadableBytes { raw -> [RecordSlot] in
            var slots: [RecordSlot] = []
            slots.reserveCapacity(header.baseOffset >= from ? count : max(0, min(count, Int(header.lastOffset - from + 1))))
            var i = 0
            let end = raw.count
            for _ in 0..<count {
                let position = i
                let length = try readVarint(raw, &i, end, position)
                guard length >= 0, length <= end - i else {
                    throw RecordsError(.badRecord, "record length \(length) does not fit in the \(end - i) bytes left", position: position)
                }
                let bodyEnd = i + Int(length)
                guard i < bodyEnd else { throw RecordsError(.badRecord, "empty record", position: position) }
                i += 1 // attributes
                let timestampDelta = try readVarint(raw, &i, bodyEnd, position)
                let offsetDelta = try readVarint(raw, &i, bodyEnd, position)
                guard offsetDelta >= 0, offsetDelta <= Int64(header.lastOffsetDelta) else {
                    throw RecordsError(.badRecord, "offset delta \(offsetDelta) outside 0...\(header.lastOffsetDelta)", position: position)
                }
                let (keyStart, keyLength) = try readField(raw, &i, bodyEnd, position)
                let (valueStart, valueLength) = try readField(raw, &i, bodyEnd, position)
                let headerCount = try readVarint(raw, &i, bodyEnd, position)
                guard headerCount >= 0, headerCount <= Int64(limits.maxHeadersPerRecord) else {
                    throw RecordsError(.badRecord, "record has \(headerCount) headers", position: position)
                }
                let headersStart = i
                for _ in 0..<headerCount {
                    let (_, keyLength) = try readField(raw, &i, bodyEnd, position)
                    guard keyLength >= 0 else { throw RecordsError(.badRecord, "record header with a null key", position: position) }
                    _ = try readField(raw, &i, bodyEnd, position)
                }
                guard i == bodyEnd else {
                    throw RecordsError(.badRecord, "\(bodyEnd - i) unread bytes at the end of a record", position: position)
                }
                let offset = header.baseOffset + offsetDelta
                if offset >= from {
                    let timestamp = header.isLogAppendTime ? header.maxTimestamp : header.baseTimestamp &+ timestampDelta
                    slots.append(RecordSlot(offset: offset, timestamp: timestamp, keyStart: Int32(keyStart), keyLength: Int32(keyLength),
                                            valueStart: Int32(valueStart), valueLength: Int32(valueLength),
                                            headersStart: Int32(headersStart), headerCount: Int32(headerCount)))
                }
            }
            guard i == end else {
                throw RecordsError(.badRecord, "\(end - i) bytes after the last of \(header.recordCount) records")
            }
            return slots
        }
        return RecordSlots(records: records, slots: slots)
    }
}

/// A zig-zag varint of at most 10 bytes from `raw[i..<end]`.
@inline(__always)
private func readVarint(_ raw: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int, _ position: Int) throws -> Int64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while true {
        guard i < end, shift < 64 else { throw RecordsError(.badVarint, "varint runs off the record or is too long", position: position) }
        let byte = raw[i]
        i += 1
        result |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { break }
        shift += 7
    }
    return Varint.unZigZag(result)
}

/// A length-prefixed bytes field: (start, length), length -1 for null.
@inline(__always)
private func readField(_ raw: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int, _ position: Int) throws -> (Int, Int) {
    let length = try readVarint(raw, &i, end, position)
    if length == -1 { return (i, -1) }
    guard length >= 0, length <= Int64(end - i) else {
        throw RecordsError(.badRecord, "field length \(length) does not fit in the \(end - i) bytes left", position: position)
    }
    let start = i
    i += Int(length)
    return (start, Int(length))
}

import NIOCore

/// Walks the record batches laid end to end in a buffer, checking each one's
/// magic, length, codec and CRC before handing it out.
///
/// ```swift
/// var reader = RecordBatchReader(buffer)
/// while let batch = try reader.next() {
///     for record in try batch.records() { … }
/// }
/// ```
///
/// A fetch response may end with a partial batch (the byte limit cut it); with
/// `allowPartialTail` such a tail ends the iteration instead of throwing.
public struct RecordBatchReader {
    private var buffer: ByteBuffer
    public let allowPartialTail: Bool
    public let verifyCRC: Bool
    /// Bytes consumed so far (whole batches only).
    public private(set) var consumedBytes = 0

    public init(_ buffer: ByteBuffer, allowPartialTail: Bool = false, verifyCRC: Bool = true) {
        self.buffer = buffer
        self.allowPartialTail = allowPartialTail
        self.verifyCRC = verifyCRC
    }

    /// Bytes not yet consumed.
    public var remainingBytes: Int { buffer.readableBytes }

    public mutating func next() throws -> RecordBatch? {
        guard buffer.readableBytes > 0 else { return nil }
        let index = buffer.readerIndex
        guard let header = RecordBatchHeader(buffer: buffer, at: index) else {
            if allowPartialTail { return nil }
            throw RecordsError(.truncated, "\(buffer.readableBytes) bytes left, less than a batch header", position: consumedBytes)
        }
        if allowPartialTail && header.batchLength >= RecordBatchHeader.minBatchLength && header.totalBytes > buffer.readableBytes {
            return nil
        }
        try header.validateShape(available: buffer.readableBytes, position: consumedBytes)
        if verifyCRC {
            let actual = RecordBatch.computeCRC(of: buffer, at: index, totalBytes: header.totalBytes)
            guard actual == header.crc else {
                throw RecordsError(.badCRC, "CRC-32C mismatch: stored \(hex(header.crc)), computed \(hex(actual))", position: consumedBytes)
            }
        }
        let bytes = buffer.readSlice(length: header.totalBytes)!
        consumedBytes += header.totalBytes
        return RecordBatch(header: header, bytes: bytes)
    }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

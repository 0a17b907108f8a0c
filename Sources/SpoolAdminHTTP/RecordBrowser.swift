import NIOCore
import SpoolBroker
import SpoolRecords

/// Reads records of one partition for people (the console's record browser and
/// `GET /v1/…/records`): decoded, with key and value as text or hex, within limits.
///
/// Limits are explicit because the caller is a browser: at most ``maxRecords``
/// records, at most ``maxReadBytes`` of log read, and at most ``maxFieldBytes``
/// shown of each key, value and header value.
public struct RecordBrowser: Sendable {
    /// Most records one call returns.
    public static let maxRecordsLimit = 500
    /// Most log bytes one call reads (batches are whole, so the first one may exceed it).
    public static let maxReadBytesLimit = 8 << 20

    public var maxRecords: Int
    public var maxReadBytes: Int
    public var maxFieldBytes: Int

    public init(maxRecords: Int = 50, maxReadBytes: Int = 1 << 20, maxFieldBytes: Int = 4096) {
        precondition(maxRecords > 0 && maxReadBytes > 0 && maxFieldBytes > 0)
        self.maxRecords = min(maxRecords, Self.maxRecordsLimit)
        self.maxReadBytes = min(maxReadBytes, Self.maxReadBytesLimit)
        self.maxFieldBytes = maxFieldBytes
    }

    /// Records from `from` on (nil: the last `maxRecords` of the log), read through the
    /// broker core: what consumers may read, up to the high watermark.
    public func read(_ reader: PartitionReader, from: Int64?) throws -> RecordsView {
        let offsets = reader.offsets
        let start = offsets.logStartOffset
        let end = offsets.highWatermark
        let first = max(start, min(end, from ?? (end - Int64(maxRecords))))
        let tp = reader.topicPartition
        var view = RecordsView(topic: tp.topic, partition: tp.partition, startOffset: start, endOffset: end,
                               from: first, next: first, records: [], limited: false)
        var position = first
        var bytesRead = 0
        reading: while position < end {
            guard bytesRead < maxReadBytes else { view.limited = true; break }
            let chunk: ByteBuffer
            do {
                chunk = try reader.readBytes(from: position, maxBytes: maxReadBytes - bytesRead)
            } catch let error as BrokerError where error.code == .offsetOutOfRange {
                break  // retention removed the segment meanwhile
            }
            guard chunk.readableBytes > 0 else { break }
            bytesRead += chunk.readableBytes
            var reader = RecordBatchReader(chunk, allowPartialTail: true)
            var advanced = false
            while let batch = try reader.next() {
                let lastOffset = batch.header.baseOffset + Int64(batch.header.lastOffsetDelta)
                var decoder = try batch.recordDecoder()
                while let record = try decoder.next() {
                    guard record.offset >= position else { continue }
                    view.records.append(show(record))
                    view.next = record.offset + 1
                    if view.records.count >= maxRecords { view.limited = view.next < end; break reading }
                }
                if lastOffset + 1 > position {
                    position = lastOffset + 1
                    advanced = true
                }
            }
            if !advanced { break }
        }
        view.next = max(view.next, min(position, end))
        return view
    }

    func show(_ record: Record) -> RecordView {
        RecordView(
            offset: record.offset, timestampMillis: record.timestamp,
            key: record.key.map(bytes), value: record.value.map(bytes),
            headers: record.headers.map { HeaderView(key: $0.key, value: $0.value.map(bytes)) })
    }

    /// Text when the bytes are UTF-8 without control characters (tab, CR, LF allowed), else hex.
    func bytes(_ buffer: ByteBuffer) -> BytesView {
        let length = buffer.readableBytes
        let shown = buffer.getSlice(at: buffer.readerIndex, length: min(length, maxFieldBytes))!
        let raw = shown.readableBytesView
        let isText = raw.allSatisfy { $0 >= 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if isText, let text = String(validating: raw, as: UTF8.self) {
            return BytesView(encoding: "text", data: text, length: length, truncated: length > raw.count)
        }
        if isText, length > raw.count {
            // A multi-byte character cut at the limit: drop the partial tail.
            for drop in 1...3 where raw.count > drop {
                if let text = String(validating: raw.prefix(raw.count - drop), as: UTF8.self) {
                    return BytesView(encoding: "text", data: text, length: length, truncated: true)
                }
            }
        }
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(raw.count * 2)
        for b in raw {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 0xF)])
        }
        return BytesView(encoding: "hex", data: String(decoding: hex, as: UTF8.self), length: length, truncated: length > raw.count)
    }
}

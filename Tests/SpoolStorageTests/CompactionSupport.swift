import NIOCore
import SpoolRecords
@testable import SpoolStorage

/// One batch of keyed records (`nil` value: a tombstone).
func keyedBatch(_ records: [(key: String, value: String?)], codec: CompressionCodec = .none,
                timestamp: Int64 = 1_700_000_000_000) -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: codec)
    for (i, r) in records.enumerated() {
        builder.append(key: ByteBuffer(string: r.key), value: r.value.map { ByteBuffer(string: $0) }, timestamp: timestamp + Int64(i))
    }
    return try! builder.build()
}

/// A record read back from a log, with its batch's codec.
struct ReadRecord: Equatable {
    var offset: Int64
    var key: String?
    var value: String?
    var codec: CompressionCodec
}

/// Every record of the log from its start to its end, across holes left by the cleaner.
func readEverything(_ log: PartitionLog) throws -> [ReadRecord] {
    var out: [ReadRecord] = []
    var offset = log.startOffset
    let end = log.endOffset
    while offset < end {
        let result = try log.read(from: offset, maxBytes: 1 << 20)
        guard let span = result.span else { break }
        let bytes = try log.readBytes(from: offset, maxBytes: 1 << 20)
        var reader = RecordBatchReader(bytes)
        while let batch = try reader.next() {
            for r in try batch.records() where r.offset >= offset {
                out.append(ReadRecord(offset: r.offset, key: r.key.map { String(buffer: $0) }, value: r.value.map { String(buffer: $0) },
                                      codec: batch.codec))
            }
        }
        offset = span.nextOffset
    }
    return out
}

/// The last record of each key, as a reader of the whole log sees it.
func lastByKey(_ records: [ReadRecord]) -> [String: ReadRecord] {
    var last: [String: ReadRecord] = [:]
    for r in records { if let key = r.key { last[key] = r } }
    return last
}

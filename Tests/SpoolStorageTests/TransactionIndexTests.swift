import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

/// The per-segment aborted-transactions index (`<base>.txnindex`, Kafka's 34-byte entries):
/// written when an ABORT marker is appended, durable across restarts, rebuilt from the
/// batches when lost or torn, cut with the log, deleted with its segment.
@Suite struct TransactionIndexTests {
    /// A transactional batch of `count` records of producer `pid`.
    static func transactional(_ pid: Int64, _ count: Int, tag: String) -> ByteBuffer {
        var builder = RecordBatchBuilder(producerId: pid, producerEpoch: 0, baseSequence: 0)
        builder.isTransactional = true
        for i in 0..<count { builder.append(key: nil, value: ByteBuffer(string: "\(tag)-\(i)"), timestamp: 1_700_000_000_000) }
        return try! builder.build()
    }

    /// A COMMIT or ABORT control batch of producer `pid`.
    static func marker(_ pid: Int64, abort: Bool) -> ByteBuffer {
        var builder = RecordBatchBuilder(producerId: pid, producerEpoch: 0, baseSequence: -1)
        var key = ByteBuffer()
        key.writeInteger(Int16(0))
        key.writeInteger(Int16(abort ? 0 : 1))
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(Int32(0))
        builder.append(key: key, value: value, timestamp: 1_700_000_000_000)
        var batch = try! builder.build()
        let start = batch.readerIndex
        let attributes: Int16 = batch.getInteger(at: start + RecordBatchHeader.Position.attributes)!
        batch.setInteger(attributes | 0x30, at: start + RecordBatchHeader.Position.attributes)
        RecordBatch.writeCRC(in: &batch, at: start)
        return batch
    }

    /// Writes a transaction of `pid` (`count` records) ended by a marker; an ABORT is
    /// recorded in the index as the broker does. Returns the marker's offset.
    @discardableResult
    static func transaction(_ log: PartitionLog, _ pid: Int64, _ count: Int, abort: Bool, rollBeforeMarker: Bool = false) throws -> AbortedTransaction? {
        var data = transactional(pid, count, tag: "p\(pid)")
        let first = try log.append(&data).baseOffset
        if rollBeforeMarker { try log.roll() }
        var end = marker(pid, abort: abort)
        let at = try log.append(&end).baseOffset
        guard abort else { return nil }
        let entry = AbortedTransaction(producerId: pid, firstOffset: first, lastOffset: at, lastStableOffset: at + 1)
        try log.appendAbortedTransaction(entry)
        return entry
    }

    static func indexPath(_ dir: String, base: Int64) -> String {
        dir + "/t-0/" + LogSegment.fileName(base, "txnindex")
    }

    @Test func anAbortWritesAnEntryThatSurvivesAReopen() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var log = try openLog(tmp.path)
        let aborted = try #require(try Self.transaction(log, 7, 5, abort: true))
        try Self.transaction(log, 8, 3, abort: false)
        try log.flush()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.indexPath(tmp.path, base: 0))))
        #expect(bytes.count == 34, "one entry of Kafka's layout")
        var b = ByteBuffer(bytes: bytes)
        #expect(b.readInteger(as: Int16.self) == 0 && b.readInteger(as: Int64.self) == 7)
        #expect(b.readInteger(as: Int64.self) == 0 && b.readInteger(as: Int64.self) == 5 && b.readInteger(as: Int64.self) == 6)
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [aborted])
        #expect(log.abortedTransactions(from: 6, upTo: 100).isEmpty, "the marker is below the fetch")
        try log.close()
        log = try openLog(tmp.path)
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [aborted])
        try log.close()
        log = try openLog(tmp.path, clean: false)
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [aborted], "recovery rebuilds the same entry")
        try log.close()
    }

    @Test func aLostOrTornIndexIsRebuiltFromTheBatches() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var log = try openLog(tmp.path)
        // One transaction begins in segment 0 and aborts in the next; one aborts within it; one commits.
        let first = try #require(try Self.transaction(log, 1, 4, abort: true, rollBeforeMarker: true))
        let second = try #require(try Self.transaction(log, 2, 2, abort: true))
        try Self.transaction(log, 3, 2, abort: false)
        let segment = first.lastOffset  // the second segment starts at the first marker
        let expected = log.abortedTransactionIndex()
        #expect(expected.map(\.entries) == [[], [first, second]])
        try log.close()

        let path = Self.indexPath(tmp.path, base: segment)
        try FileManager.default.removeItem(atPath: path)
        log = try openLog(tmp.path)
        #expect(log.abortedTransactionIndex().map(\.entries) == expected.map(\.entries), "rebuilt after the file was deleted")
        try log.close()
        #expect(FileManager.default.fileExists(atPath: path), "and written again")

        // A torn tail: half an entry after the whole ones.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 0, count: 17))
        try handle.close()
        log = try openLog(tmp.path)
        #expect(log.abortedTransactionIndex().map(\.entries) == expected.map(\.entries), "the torn entry is dropped")
        try log.close()
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 68)
    }

    @Test func truncationCutsTheIndexWithTheLog() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var log = try openLog(tmp.path)
        let kept = try #require(try Self.transaction(log, 1, 3, abort: true))      // marker at 3
        let cutOff = try #require(try Self.transaction(log, 2, 3, abort: true))    // 4...6, marker at 7
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [kept, cutOff])
        try log.truncate(to: 5)
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [kept])
        try log.close()
        log = try openLog(tmp.path)
        #expect(log.abortedTransactions(from: 0, upTo: 100) == [kept], "the file was cut too")
        try log.close()
    }

    @Test func theIndexGoesWithItsSegment() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        try Self.transaction(log, 1, 3, abort: true)
        try log.roll()
        let later = try #require(try Self.transaction(log, 2, 3, abort: true))
        try log.flush()
        #expect(FileManager.default.fileExists(atPath: Self.indexPath(tmp.path, base: 0)))
        // DeleteRecords past the first segment deletes it whole, index included.
        _ = try log.deleteRecords(before: later.firstOffset)
        #expect(!FileManager.default.fileExists(atPath: Self.indexPath(tmp.path, base: 0)))
        #expect(log.abortedTransactions(from: later.firstOffset, upTo: 100) == [later])
        try log.close()
    }

    @Test func theSearchStopsAtAnEntryWhoseStableOffsetCoversTheRange() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        let a = try #require(try Self.transaction(log, 1, 3, abort: true))   // 0...2, marker 3
        try log.roll()
        let b = try #require(try Self.transaction(log, 2, 3, abort: true))   // 4...6, marker 7
        #expect(log.abortedTransactions(from: 0, upTo: 3) == [a])
        #expect(log.abortedTransactions(from: 0, upTo: 8) == [a, b])
        #expect(log.abortedTransactions(from: 4, upTo: 8) == [b])
        try log.close()
    }

    @Test func aCleanedSegmentKeepsItsOriginalsEntries() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let config = try TopicConfig(["cleanup.policy": "compact", "segment.bytes": "1024", "index.interval.bytes": "100",
                                      "min.cleanable.dirty.ratio": "0.01"])
        var log = try openLog(tmp.path, config: config)
        // An aborted transaction of keys no later record replaces, between rounds of keys that are.
        var builder = RecordBatchBuilder(producerId: 9, producerEpoch: 0, baseSequence: 0)
        builder.isTransactional = true
        for i in 0..<3 { builder.append(key: ByteBuffer(string: "tx\(i)"), value: ByteBuffer(string: "aborted"), timestamp: 1_700_000_000_000) }
        var data = try builder.build()
        let first = try log.append(&data).baseOffset
        var end = Self.marker(9, abort: true)
        let at = try log.append(&end).baseOffset
        let entry = AbortedTransaction(producerId: 9, firstOffset: first, lastOffset: at, lastStableOffset: at + 1)
        try log.appendAbortedTransaction(entry)
        for round in 0..<30 {
            var batch = keyedBatch((0..<8).map { ("k\($0)", "r\(round)-\($0)") })
            _ = try log.append(&batch)
        }
        try log.roll()
        try log.flush()
        let segmentsBefore = log.segmentCount
        _ = try #require(try log.clean(now: 1_800_000_000_000, force: true))
        _ = try log.clean(now: 1_800_000_000_000, force: true)
        #expect(log.segmentCount < segmentsBefore, "cleaned segments are merged")
        #expect(log.abortedTransactions(from: 0, upTo: log.endOffset) == [entry])
        try log.close()
        log = try openLog(tmp.path, config: config)
        #expect(log.abortedTransactions(from: 0, upTo: log.endOffset) == [entry], "the cleaned segment's .txnindex holds it")
        try log.close()
    }
}

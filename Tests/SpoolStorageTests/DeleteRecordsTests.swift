import Glibc
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

/// DeleteRecords at the storage level: the log start offset moves, is durable across a
/// clean and an unclean restart, deletes whole segments below it, and bounds reads and lookups.
@Suite struct DeleteRecordsTests {
    func filledLog(_ dir: String, clean: Bool = true) throws -> (PartitionLog, TopicConfig) {
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.indexIntervalBytes = 128
        config.retentionMillis = -1 // the timestamps are from 1970: only DeleteRecords may delete here
        let log = try openLog(dir, config: config, clean: clean)
        for i in 0..<60 {
            var batch = makeBatch(5, tag: "b\(i)", timestamp: 1000 + Int64(i) * 10)
            _ = try log.append(&batch)
        }
        return (log, config)
    }

    @Test func logStartMovesAndWholeSegmentsGo() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let (log, config) = try filledLog(tmp.path)
        let segmentsBefore = log.segmentCount
        #expect(segmentsBefore > 3)
        #expect(log.startOffset == 0)
        #expect(try log.deleteRecords(before: 123) == 123)
        #expect(log.startOffset == 123)
        #expect(log.segmentCount < segmentsBefore, "segments wholly below 123 are deleted")
        #expect(throws: StorageError.self) { _ = try log.read(from: 122, maxBytes: 1 << 20) }
        do { _ = try log.read(from: 0, maxBytes: 1 << 20); Issue.record("a read below the log start must fail") }
        catch let e as StorageError { #expect(e.code == .offsetOutOfRange) }
        // The first readable batch still holds 120...124: the span starts at its base, as Kafka's does.
        let span = try #require(try log.read(from: 123, maxBytes: 1).span)
        #expect(span.firstOffset == 120)
        // Lookups by time skip deleted records even in a segment still on disk.
        #expect(try log.record(atOrAfter: 0)?.offset == 123)
        #expect(try log.offset(forTimestamp: 1243) == 123)
        #expect(try log.maxTimestampRecord() == TimestampedOffset(offset: 299, timestamp: 1594))
        // Lower offsets change nothing; past the end is refused; the end itself empties the log.
        #expect(try log.deleteRecords(before: 50) == 123)
        do { _ = try log.deleteRecords(before: 301); Issue.record("past the end must fail") }
        catch let e as StorageError { #expect(e.code == .offsetOutOfRange) }
        try log.close()

        let again = try openLog(tmp.path, config: config)
        #expect(again.startOffset == 123, "the log start survives a clean restart")
        #expect(again.fetchableOffsets == 123...300)
        #expect(try again.deleteRecords(before: 300) == 300)
        #expect(try again.read(from: 300, maxBytes: 1 << 20).span == nil)
        #expect(try again.record(atOrAfter: 0) == nil)
        #expect(try again.maxTimestampRecord() == nil)
        var more = makeBatch(2)
        #expect(try again.append(&more).baseOffset == 300)
        #expect(try again.read(from: 300, maxBytes: 1 << 20).span?.firstOffset == 300)
        try again.close()
    }

    @Test func logStartSurvivesAnUncleanRestart() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let (log, config) = try filledLog(tmp.path)
        try log.flush()
        #expect(try log.deleteRecords(before: 77) == 77)
        // No close: a crash. The checkpoint was fsynced before the call returned.
        let again = try openLog(tmp.path, config: config, clean: false)
        #expect(again.startOffset == 77)
        #expect(again.endOffset == 300)
        try again.close()
        _ = log
    }
}

import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

@Suite struct BatchHeaderScanTests {
    @Test func walksEveryBatchHeaderOfTheTailOldestFirst() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        // Three segments of batches with 1, 2, 3 ... records; some large enough to cross a read chunk.
        var expected: [Int64] = []
        for segment in 0..<3 {
            for i in 0..<40 {
                var batch = makeBatch(1 + i % 3, tag: "s\(segment)", valueBytes: i % 10 == 0 ? 50_000 : 10)
                expected.append(try log.append(&batch).baseOffset)
            }
            if segment < 2 { try log.roll() }
        }
        var seen: [RecordBatchHeader] = []
        try log.forEachBatchHeader(tailBytesMax: .max) { seen.append($0) }
        #expect(seen.map(\.baseOffset) == expected)
        let counts: [Int32] = (0..<120).map { (n: Int) -> Int32 in Int32(1 + (n % 40) % 3) }
        #expect(seen.map(\.recordCount) == counts)

        // A bound that holds the newest segment and a bit: only the newest segment is read.
        var tail: [Int64] = []
        try log.forEachBatchHeader(tailBytesMax: 1) { tail.append($0.baseOffset) }
        #expect(tail == Array(expected[80...]))
        try log.close()
    }

    @Test func emptyLogHasNoHeaders() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        var count = 0
        try log.forEachBatchHeader(tailBytesMax: .max) { _ in count += 1 }
        #expect(count == 0)
    }

    @Test func producerIdBlocksSurviveReopenAndCorruptionIsReported() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let store = try ProducerIdBlockStore(dataDirectory: tmp.path)
        #expect(try store.reserve(100) == 0..<100)
        #expect(try store.reserve(100) == 100..<200)
        #expect(try ProducerIdBlockStore(dataDirectory: tmp.path).nextUnreserved == 200)
        try Directory.writeAtomically(Array("spool-producer-ids v1\nminus\n".utf8), to: tmp.path + "/" + ProducerIdBlockStore.fileName, io: PosixFileIO())
        #expect { _ = try ProducerIdBlockStore(dataDirectory: tmp.path) } throws: { ($0 as? StorageError)?.code == .corrupt }
    }
}

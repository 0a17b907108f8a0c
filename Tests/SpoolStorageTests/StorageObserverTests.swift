import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// Records every event storage reports.
final class RecordingObserver: StorageObserver {
    let fsyncs = Mutex<[Int64]>([])
    let commits = Mutex<[Int]>([])
    let opened = Mutex<[PartitionRecoveryReport]>([])
    let deleted = Mutex<[(Int64, Int64, RetentionReason)]>([])
    let stopped = Mutex<[StorageError]>([])

    func fsyncCompleted(_ tp: TopicPartition, durationNanos: Int64) { fsyncs.withLock { $0.append(durationNanos) } }
    func groupCommitCompleted(_ tp: TopicPartition, waiters: Int) { commits.withLock { $0.append(waiters) } }
    func partitionOpened(_ report: PartitionRecoveryReport) { opened.withLock { $0.append(report) } }
    func segmentDeleted(_ tp: TopicPartition, baseOffset: Int64, bytes: Int64, reason: RetentionReason) {
        deleted.withLock { $0.append((baseOffset, bytes, reason)) }
    }
    func partitionStopped(_ tp: TopicPartition, error: StorageError) { stopped.withLock { $0.append(error) } }
}

/// Storage tells its observer about fsyncs, group commits, recovery, retention and stops.
@Suite struct StorageObserverTests {
    func open(_ dir: TempDir, clean: Bool, config: TopicConfig = TopicConfig(), io: FileIO = PosixFileIO(),
              observer: RecordingObserver) throws -> PartitionLog {
        try PartitionLog(directory: dir.path + "/t-0", topic: "t", partition: 0, config: config,
                         files: FileDescriptorCache(capacity: 16, io: io), cleanShutdown: clean, observer: observer)
    }

    @Test func recoveryReportsBytesScannedAndTruncated() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var log = try open(dir, clean: true, observer: RecordingObserver())  // never closed: as after a crash
        var batch = makeBatch(50)
        let batchBytes = Int64(batch.readableBytes)
        _ = try log.append(&batch)
        var second = makeBatch(50)
        _ = try log.append(&second)
        try log.flush()
        // A torn tail: 10 bytes of garbage after the two batches.
        let path = dir.path + "/t-0/00000000000000000000.log"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(repeating: 0xAB, count: 10))
        try handle.close()

        let observer = RecordingObserver()
        log = try open(dir, clean: false, observer: observer)
        let report = try #require(observer.opened.withLock { $0.first })
        #expect(!report.clean && report.topicPartition == TopicPartition("t", 0))
        #expect(report.bytesScanned == 2 * batchBytes + 10)
        #expect(report.bytesTruncated == 10)
        #expect(report.durationNanos > 0)
        #expect(log.endOffset == 100)

        let cleanObserver = RecordingObserver()
        _ = try open(TempDir(), clean: true, observer: cleanObserver)
        #expect(cleanObserver.opened.withLock { $0.first.map { $0.clean && $0.bytesScanned == 0 } } == true)
    }

    @Test func fsyncsAndGroupCommitsAreReported() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let observer = RecordingObserver()
        let log = try open(dir, clean: true, observer: observer)
        var batch = makeBatch(3)
        let result = try log.append(&batch)
        try await log.waitUntilDurable(result.lastOffset + 1)
        #expect(observer.fsyncs.withLock { $0.count } >= 1)
        #expect(observer.commits.withLock { $0.reduce(0, +) } == 1)
    }

    @Test func retentionDeletionsCarryTheirReason() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.retentionBytes = 2048
        config.retentionMillis = -1
        let observer = RecordingObserver()
        let log = try open(dir, clean: true, config: config, observer: observer)
        for _ in 0..<10 {
            var batch = makeBatch(20, valueBytes: 40)
            _ = try log.append(&batch)
        }
        let deleted = try log.applyRetention(now: PartitionLog.wallClockMillis())
        let events = observer.deleted.withLock { $0 }
        #expect(deleted > 0 && events.count == deleted)
        #expect(events.allSatisfy { $0.2 == .size && $0.1 > 0 })
        #expect(events.first?.0 == 0)
    }

    @Test func aFailedFsyncStopsThePartitionOnce() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let io = FaultyFileIO()
        let observer = RecordingObserver()
        let log = try open(dir, clean: true, io: io, observer: observer)
        var batch = makeBatch(3)
        _ = try log.append(&batch)
        io.failFsyncs(true)
        #expect(throws: StorageError.self) { try log.flush() }
        #expect(throws: StorageError.self) { try log.flush() }
        let stops = observer.stopped.withLock { $0 }
        #expect(stops.count == 1 && stops.first?.code == .logFailed)
    }
}

import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

/// The storage side of replication: leader epochs stamped and checkpointed, follower
/// appends, truncation (crash-safe), the replicated high watermark.
@Suite struct ReplicaLogTests {
    /// Reads every batch header of `log` (offset, epoch).
    func headers(_ log: PartitionLog) throws -> [(Int64, Int32)] {
        var out: [(Int64, Int32)] = []
        try log.forEachBatchHeader(tailBytesMax: .max) { out.append(($0.baseOffset, $0.partitionLeaderEpoch)) }
        return out
    }

    /// Every record of `log`, across segments.
    func records(_ log: PartitionLog) throws -> [Record] {
        var out: [Record] = []
        var offset = log.startOffset
        while let span = try log.read(from: offset, maxBytes: 1 << 24).span {
            out += try decodeAll(try log.readBytes(from: offset, maxBytes: 1 << 24))
            offset = span.nextOffset
        }
        return out
    }

    @Test func leaderStampsItsEpochAndRecordsWhereEachStarts() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        var a = makeBatch(3)
        _ = try log.append(validated: log.validate(a), &a, leaderEpoch: 0)
        var b = makeBatch(2)
        _ = try log.append(validated: log.validate(b), &b, leaderEpoch: 4)
        var c = makeBatch(1)
        _ = try log.append(validated: log.validate(c), &c, leaderEpoch: 4)
        #expect(try headers(log).map(\.1) == [0, 4, 4])
        #expect(log.leaderEpochs == [.init(epoch: 0, startOffset: 0), .init(epoch: 4, startOffset: 3)])
        // The stamp is outside the CRC: the stored batches still validate.
        _ = try ProducedBatches.validate(try log.readBytes(from: 0, maxBytes: 1 << 20))
        #expect(log.endOffset(forLeaderEpoch: 0) == (0, 3))
        #expect(log.endOffset(forLeaderEpoch: 3) == (0, 3))
        #expect(log.endOffset(forLeaderEpoch: 4) == (4, 6))
        #expect(log.endOffset(forLeaderEpoch: 9) == (4, 6))
        // The epoch file survives a restart.
        try log.close()
        let again = try openLog(tmp.path)
        #expect(again.leaderEpochs == [.init(epoch: 0, startOffset: 0), .init(epoch: 4, startOffset: 3)])
        try again.close()
    }

    /// A replica elected at epoch 1 that appended nothing, then told by the next leader (which
    /// never had epoch 1) that it diverged at its log end: no record goes, the epoch does, so its
    /// next fetch names epoch 0 and agrees with the leader.
    @Test func truncatingAtTheEndDropsAnEpochThatAppendedNothing() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        var a = makeBatch(10)
        _ = try log.append(validated: log.validate(a), &a, leaderEpoch: 0)
        try log.assignLeaderEpoch(1)
        #expect(log.latestLeaderEpoch == 1)
        try log.truncate(to: 10)
        #expect(log.endOffset == 10)
        #expect(log.latestLeaderEpoch == 0)
        #expect(log.leaderEpochs == [.init(epoch: 0, startOffset: 0)])
        try log.close()
        #expect(try openLog(tmp.path).leaderEpochs == [.init(epoch: 0, startOffset: 0)])
    }

    @Test func followerKeepsTheLeadersOffsetsEpochsAndBytes() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let leaderDir = tmp.path + "/leader", followerDir = tmp.path + "/follower"
        let leader = try openLog(leaderDir)
        let follower = try openLog(followerDir)
        for (i, epoch) in [(0, Int32(1)), (1, 1), (2, 3)] {
            var batch = makeBatch(2 + i, tag: "b\(i)")
            _ = try leader.append(validated: leader.validate(batch), &batch, leaderEpoch: epoch)
        }
        let bytes = try leader.readBytes(from: 0, maxBytes: 1 << 20)
        let appended = try follower.appendAsFollower(bytes)
        #expect(appended.result == AppendResult(baseOffset: 0, lastOffset: 8, recordCount: 9))
        #expect(try follower.readBytes(from: 0, maxBytes: 1 << 20) == bytes)
        #expect(follower.leaderEpochs == leader.leaderEpochs)
        // Not contiguous with the log end: refused, nothing written.
        #expect { _ = try follower.appendAsFollower(bytes) } throws: { ($0 as? StorageError)?.code == .offsetOutOfRange }
        // A flipped bit: refused by the CRC.
        var corrupt = try leader.readBytes(from: 5, maxBytes: 1 << 20)
        let last = corrupt.writerIndex - 1
        corrupt.setInteger(corrupt.getInteger(at: last, as: UInt8.self)! ^ 0xFF, at: last)
        #expect { _ = try follower.appendAsFollower(corrupt) } throws: { ($0 as? StorageError)?.code == .corrupt }
        #expect(follower.endOffset == 9)
        try leader.close(); try follower.close()
    }

    @Test func truncationCutsSegmentsIndexesAndEpochs() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 1024
        config.indexIntervalBytes = 128
        let log = try openLog(tmp.path, config: config)
        var boundaries: [Int64] = []
        for i in 0..<40 {
            boundaries.append(log.endOffset)
            var batch = makeBatch(3, tag: "b\(i)", valueBytes: 30)
            _ = try log.append(validated: log.validate(batch), &batch, leaderEpoch: Int32(i / 10))
        }
        #expect(log.segmentCount > 3)
        log.setHighWatermark(60)
        let cut = boundaries[17]  // inside epoch 1, some segments back
        try log.truncate(to: cut)
        #expect(log.endOffset == cut && log.highWatermark == cut)
        #expect(log.leaderEpochs.map(\.epoch) == [0, 1])
        #expect(try records(log).map(\.offset) == Array(0..<cut))
        // Appends go on from the cut, and everything survives clean and unclean restarts.
        var more = makeBatch(2, tag: "new")
        #expect(try log.append(validated: log.validate(more), &more, leaderEpoch: 7).baseOffset == cut)
        try log.close()
        for clean in [true, false] {
            let again = try openLog(tmp.path, config: config, clean: clean)
            #expect(again.endOffset == cut + 2)
            #expect(again.leaderEpochs.map(\.epoch) == [0, 1, 7])
            let records = try records(again)
            #expect(records.map(\.offset) == Array(0..<(cut + 2)))
            #expect(String(buffer: records.last!.value!) == "new-1")
            try again.close()
        }
    }

    @Test func crashBetweenTheLogCutAndTheEpochFileIsRepairedAtOpen() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        for epoch: Int32 in [0, 1, 2] {
            var batch = makeBatch(5)
            _ = try log.append(validated: log.validate(batch), &batch, leaderEpoch: epoch)
        }
        let epochFile = tmp.path + "/t-0/" + LeaderEpochFile.fileName
        let before = try Data(contentsOf: URL(fileURLWithPath: epochFile))
        try log.truncate(to: 5)
        try log.close()
        // The crash: the log was cut and fsynced, the epoch file not yet rewritten.
        try before.write(to: URL(fileURLWithPath: epochFile))
        let again = try openLog(tmp.path, clean: false)
        #expect(again.endOffset == 5)
        #expect(again.leaderEpochs == [.init(epoch: 0, startOffset: 0)])
        #expect(again.endOffset(forLeaderEpoch: 2) == (0, 5))
        try again.close()
    }

    @Test func crashAfterTheRecoveryPointMovedBackBeforeTheCutLeavesAWholeLog() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        var config = TopicConfig()
        config.segmentBytes = 1024
        let log = try openLog(tmp.path, config: config)
        for i in 0..<30 {
            var batch = makeBatch(2, tag: "b\(i)", valueBytes: 30)
            _ = try log.append(validated: log.validate(batch), &batch, leaderEpoch: 0)
        }
        try log.flush()
        try log.close()
        // First step of a truncation only: the recovery point written back to 0.
        try Data("0\n".utf8).write(to: URL(fileURLWithPath: tmp.path + "/t-0/recovery-point"))
        let again = try openLog(tmp.path, config: config, clean: false)
        #expect(again.endOffset == 60)
        #expect(try records(again).count == 60)
        try again.truncate(to: 20)
        #expect(again.endOffset == 20)
        try again.close()
    }

    @Test func highWatermarkBoundsReadsAndIsCheckpointed() throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let log = try openLog(tmp.path)
        for _ in 0..<4 {
            var batch = makeBatch(5)
            _ = try log.append(validated: log.validate(batch), &batch, leaderEpoch: 0)
        }
        #expect(!log.isReplicated && log.highWatermark == 20)
        log.setHighWatermark(10)
        #expect(log.isReplicated && log.highWatermark == 10)
        let bounded = try log.read(from: 0, maxBytes: 1 << 20, upTo: log.highWatermark)
        #expect(bounded.span?.nextOffset == 10 && bounded.highWatermark == 10)
        #expect(try log.read(from: 10, maxBytes: 1 << 20, upTo: 10).span == nil)
        #expect(try log.read(from: 10, maxBytes: 1 << 20, upTo: nil).span?.nextOffset == 20)
        log.setHighWatermark(5)  // never moves back
        #expect(log.highWatermark == 10)
        try log.close()
        let again = try openLog(tmp.path)
        #expect(again.isReplicated && again.highWatermark == 10)
        try again.close()
    }

    @Test func epochFileRefusesDamageAndKeepsOrder() throws {
        #expect(LeaderEpochFile.decode("0\n2\n1 0\n3 10\n") == [.init(epoch: 1, startOffset: 0), .init(epoch: 3, startOffset: 10)])
        #expect(LeaderEpochFile.decode("0\n2\n3 0\n1 10\n") == nil)
        #expect(LeaderEpochFile.decode("0\n3\n1 0\n") == nil)
        #expect(LeaderEpochFile.decode("garbage") == nil)
        let tmp = TempDir(); defer { tmp.cleanup() }
        var file = try LeaderEpochFile(directory: tmp.path, logEnd: 0, io: PosixFileIO())
        try file.assign(epoch: 2, startOffset: 0)
        try file.assign(epoch: 1, startOffset: 5)  // older: ignored
        try file.assign(epoch: 3, startOffset: 0)  // same start: replaces the empty epoch 2
        try file.assign(epoch: 5, startOffset: 8)
        #expect(file.entries == [.init(epoch: 3, startOffset: 0), .init(epoch: 5, startOffset: 8)])
        #expect(file.endOffset(for: 4, logEnd: 12) == (3, 8))
        #expect(file.endOffset(for: 2, logEnd: 12) == (-1, -1))
        let reread = try LeaderEpochFile(directory: tmp.path, logEnd: 12, io: PosixFileIO())
        #expect(reread.entries == file.entries)
    }
}

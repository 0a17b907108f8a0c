import Dispatch
import Foundation
import NIOCore
@testable import SpoolBroker
import SpoolRecords
@testable import SpoolStorage
import Synchronization
import Testing

/// A data directory with one partition log and a producer-state manager over it.
final class ProducerStateHarness: @unchecked Sendable {  // restart() is never concurrent with appends
    let directory: String
    var log: PartitionLog
    var producers: ProducerStateManager
    let config: ProducerStateConfig
    static let now: Int64 = 1_700_000_000_000

    init(directory: String? = nil, config: ProducerStateConfig = ProducerStateConfig(), topicConfig: TopicConfig = TopicConfig()) throws {
        self.directory = directory ?? NSTemporaryDirectory() + "spool-producers-" + UUID().uuidString
        self.config = config
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        log = try Self.openLog(self.directory, clean: true, topicConfig: topicConfig)
        producers = try ProducerStateManager(dataDirectory: self.directory, config: config, clock: { Self.now })
    }

    static func openLog(_ directory: String, clean: Bool, topicConfig: TopicConfig = TopicConfig()) throws -> PartitionLog {
        try PartitionLog(directory: directory + "/t-0", topic: "t", partition: 0, config: topicConfig,
                         files: FileDescriptorCache(capacity: 64), cleanShutdown: clean)
    }

    /// Opens the log and a new manager again, as a restart does (`clean: false` runs recovery).
    func restart(clean: Bool) throws {
        if clean { try log.close() }
        log = try Self.openLog(directory, clean: clean)
        producers = try ProducerStateManager(dataDirectory: directory, config: config, clock: { Self.now })
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A batch of `count` records from producer `pid`.
    static func batch(pid: Int64, epoch: Int16 = 0, sequence: Int32, count: Int = 1, timestamp: Int64 = now) -> ByteBuffer {
        var builder = RecordBatchBuilder(producerId: pid, producerEpoch: epoch, baseSequence: sequence)
        for i in 0..<count { builder.append(key: nil, value: ByteBuffer(string: "p\(pid)-s\(Int(sequence) + i)"), timestamp: timestamp) }
        return try! builder.build()
    }

    /// Appends through the producer state, as the broker's append path does.
    func append(_ bytes: ByteBuffer) throws -> ProducerAppendOutcome {
        var bytes = bytes
        let validated = try ProducedBatches.validate(bytes)
        return try producers.append(validated, to: log) { try log.append(validated: validated, &bytes) }
    }

    func append(pid: Int64, epoch: Int16 = 0, sequence: Int32, count: Int = 1) throws -> ProducerAppendOutcome {
        try append(Self.batch(pid: pid, epoch: epoch, sequence: sequence, count: count))
    }

    /// The refusal's code, or nil when the append went through.
    func refusal(pid: Int64, epoch: Int16 = 0, sequence: Int32, count: Int = 1) -> ProducerStateError.Code? {
        do {
            _ = try append(pid: pid, epoch: epoch, sequence: sequence, count: count)
            return nil
        } catch {
            return (error as? ProducerStateError)?.code
        }
    }
}

@Suite("Idempotent producer state")
struct ProducerStateTests {
    @Test("InitProducerId: fresh ids with epoch 0, durable in blocks (a restart never reuses one), epoch bumps")
    func producerIds() throws {
        var config = ProducerStateConfig()
        config.producerIdBlockSize = 10
        let h = try ProducerStateHarness(config: config)
        let first = try (0..<12).map { _ in try h.producers.initProducerId() }
        #expect(first.map(\.producerId) == Array(0..<12))
        #expect(first.allSatisfy { $0.producerEpoch == 0 })
        #expect(try h.producers.initProducerId(producerId: 3, producerEpoch: 4) == .init(producerId: 3, producerEpoch: 5))
        #expect(try h.producers.initProducerId(producerId: 3, producerEpoch: Int16.max).producerEpoch == 0, "no epoch left: a fresh id")
        #expect(try h.producers.initProducerId(producerId: 1_000_000, producerEpoch: 0).producerEpoch == 0, "an id never handed out")
        // A restart (even a crash: the reservation was durable before any id of it was used) starts after the reserved blocks.
        let again = try ProducerStateManager(dataDirectory: h.directory, config: config)
        #expect(try again.initProducerId().producerId == 20)
    }

    @Test("Sequences: append, duplicate with the original offsets, gap, fenced epoch, new epoch from 0")
    func sequenceRules() throws {
        let h = try ProducerStateHarness()
        #expect(try h.append(pid: 7, sequence: 0, count: 3) == .appended(AppendResult(baseOffset: 0, lastOffset: 2, recordCount: 3)))
        #expect(try h.append(pid: 7, sequence: 3, count: 2) == .appended(AppendResult(baseOffset: 3, lastOffset: 4, recordCount: 2)))
        // A retry of the first batch: success with its offsets, nothing written.
        #expect(try h.append(pid: 7, sequence: 0, count: 3) == .duplicate(baseOffset: 0, lastOffset: 2))
        #expect(h.log.endOffset == 5)
        #expect(h.refusal(pid: 7, sequence: 9) == .outOfOrderSequenceNumber, "a gap")
        #expect(h.refusal(pid: 7, sequence: 4, count: 2) == .outOfOrderSequenceNumber, "overlaps the end without matching a batch")
        #expect(try h.append(pid: 7, sequence: 4) == .duplicate(baseOffset: 4, lastOffset: 4), "records inside an appended run")
        #expect(h.refusal(pid: 7, epoch: 1, sequence: 5) == .outOfOrderSequenceNumber, "a new epoch starts at 0")
        #expect(try h.append(pid: 7, epoch: 1, sequence: 0) == .appended(AppendResult(baseOffset: 5, lastOffset: 5, recordCount: 1)))
        #expect(h.refusal(pid: 7, epoch: 0, sequence: 5) == .invalidProducerEpoch, "the old epoch is fenced")
        #expect(h.refusal(pid: 7, epoch: 1, sequence: 0) == nil, "a duplicate of the new epoch's batch")
        #expect(h.refusal(pid: 8, epoch: 0, sequence: -1) == .invalidRecord)
        #expect(h.log.endOffset == 6, "refused batches and duplicates are never written")
    }

    @Test("An unknown producer's first batch is accepted with any sequence")
    func unknownProducer() throws {
        let h = try ProducerStateHarness()
        #expect(try h.append(pid: 42, epoch: 3, sequence: 1_000) == .appended(AppendResult(baseOffset: 0, lastOffset: 0, recordCount: 1)))
        #expect(h.refusal(pid: 42, epoch: 3, sequence: 1_002) == .outOfOrderSequenceNumber)
        #expect(h.refusal(pid: 42, epoch: 3, sequence: 999) == .outOfOrderSequenceNumber,
                "before the first sequence the table saw: never vouched for, so not a duplicate")
        #expect(h.refusal(pid: 42, epoch: 3, sequence: 1_001) == nil)
    }

    @Test("Only the last 5 runs keep their offsets; older appended sequences are duplicates without offsets")
    func lastFiveRuns() throws {
        let h = try ProducerStateHarness()
        // Another producer between each batch: every batch of producer 1 is a run of its own.
        for i in 0..<6 {
            _ = try h.append(pid: 1, sequence: Int32(i * 2), count: 2)
            _ = try h.append(pid: 2, sequence: Int32(i))
        }
        #expect(h.refusal(pid: 1, sequence: 0, count: 2) == .duplicateSequenceNumber,
                "the oldest run is forgotten, but its sequences were appended: not a gap")
        #expect(try h.append(pid: 1, sequence: 2, count: 2) == .duplicate(baseOffset: 3, lastOffset: 4))
        #expect(try h.append(pid: 1, sequence: 10, count: 2) == .duplicate(baseOffset: 15, lastOffset: 16))
        #expect(h.refusal(pid: 1, sequence: 13) == .outOfOrderSequenceNumber, "a gap")
        #expect(h.log.endOffset == 18)
    }

    @Test("Batches appended back to back form one run: any of them retried alone is a duplicate with its own offsets")
    func runsOfBatches() throws {
        let h = try ProducerStateHarness()
        // One request of 16 batches of 64 records (sequences 0...1023), as the Spool client sends them.
        var request = ByteBuffer()
        for b in 0..<16 {
            var batch = ProducerStateHarness.batch(pid: 33, sequence: Int32(b * 64), count: 64)
            request.writeBuffer(&batch)
        }
        #expect(try h.append(request) == .appended(AppendResult(baseOffset: 0, lastOffset: 1023, recordCount: 1024)))
        // Its answer was lost; the client retries the batches one at a time, the first one first.
        for b in 0..<16 {
            #expect(try h.append(pid: 33, sequence: Int32(b * 64), count: 64)
                    == .duplicate(baseOffset: Int64(b * 64), lastOffset: Int64(b * 64 + 63)))
        }
        // The whole request again, and a request mixing a repeat with a new batch.
        #expect(try h.append(request) == .duplicate(baseOffset: 0, lastOffset: 1023))
        var mixed = ProducerStateHarness.batch(pid: 33, sequence: 960, count: 64)
        var new = ProducerStateHarness.batch(pid: 33, sequence: 1024, count: 1)
        mixed.writeBuffer(&new)
        #expect(throws: ProducerStateError.self) { try h.append(mixed) }
        #expect(h.log.endOffset == 1024, "nothing was written twice")
        #expect(try h.append(pid: 33, sequence: 1024) == .appended(AppendResult(baseOffset: 1024, lastOffset: 1024, recordCount: 1)))
    }

    @Test("Sequences wrap to 0 after Int32.max")
    func sequenceWrap() throws {
        #expect(ProducerEntry.lastSequence(base: Int32.max - 1, lastOffsetDelta: 2) == 0)
        #expect(ProducerEntry.lastSequence(base: Int32.max, lastOffsetDelta: 0) == Int32.max)
        #expect(ProducerEntry.lastSequence(base: 5, lastOffsetDelta: 3) == 8)
        let h = try ProducerStateHarness()
        _ = try h.append(pid: 1, sequence: Int32.max - 1, count: 3)   // sequences max-1, max, 0
        #expect(try h.append(pid: 1, sequence: 0) == .duplicate(baseOffset: 2, lastOffset: 2), "inside the run, across the wrap")
        #expect(h.refusal(pid: 1, sequence: 5) == .outOfOrderSequenceNumber)
        #expect(h.refusal(pid: 1, sequence: 1) == nil)
        #expect(ProducerEntry.distance(from: Int32.max, to: 0) == 1)
        #expect(ProducerEntry.distance(from: 3, to: 1) == Int64(Int32.max) - 1)
        _ = try h.append(pid: 2, sequence: Int32.max)
        #expect(h.refusal(pid: 2, sequence: 0) == nil, "Int32.max is followed by 0")
    }

    @Test("Batches without a producer id are always appended")
    func notIdempotent() throws {
        let h = try ProducerStateHarness()
        let plain = ProducerStateHarness.batch(pid: -1, epoch: -1, sequence: -1)
        #expect(try h.append(plain) == .appended(AppendResult(baseOffset: 0, lastOffset: 0, recordCount: 1)))
        #expect(try h.append(plain) == .appended(AppendResult(baseOffset: 1, lastOffset: 1, recordCount: 1)))
        #expect(h.producers.table(for: h.log).producerCount == 0)
    }

    @Test("Several batches of one producer in one request are checked in order, all or nothing")
    func batchesInOneRequest() throws {
        let h = try ProducerStateHarness()
        var two = ProducerStateHarness.batch(pid: 3, sequence: 0, count: 2)
        var next = ProducerStateHarness.batch(pid: 3, sequence: 2, count: 1)
        two.writeBuffer(&next)
        #expect(try h.append(two) == .appended(AppendResult(baseOffset: 0, lastOffset: 2, recordCount: 3)))
        #expect(h.producers.table(for: h.log).lastSequence(of: 3)! == (0, 2))
        var good = ProducerStateHarness.batch(pid: 3, sequence: 3, count: 1)
        var gap = ProducerStateHarness.batch(pid: 3, sequence: 9, count: 1)
        good.writeBuffer(&gap)
        #expect(throws: ProducerStateError.self) { try h.append(good) }
        #expect(h.log.endOffset == 3, "the good batch before the gap was not written either")
        // The duplicate of the request's second batch alone.
        #expect(try h.append(pid: 3, sequence: 2) == .duplicate(baseOffset: 2, lastOffset: 2))
    }

    @Test("A recreated partition (a new log) starts with fresh producer state; forget(topic:) drops it")
    func recreatedPartition() throws {
        let h = try ProducerStateHarness()
        _ = try h.append(pid: 1, sequence: 0, count: 3)
        let old = h.producers.table(for: h.log)
        #expect(h.producers.table(for: h.log) === old)
        let other = NSTemporaryDirectory() + "spool-producers-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: other) }
        let recreated = try ProducerStateHarness.openLog(other, clean: true)
        #expect(h.producers.table(for: recreated) !== old)
        #expect(h.producers.table(for: recreated).producerCount == 0)
        let current = h.producers.table(for: recreated)
        h.producers.forget(topic: "t")
        #expect(h.producers.table(for: recreated) !== current)
    }

    @Test("Concurrent retries of one batch: exactly one is appended")
    func concurrentRetries() throws {
        let h = try ProducerStateHarness()
        let outcomes = Mutex<[ProducerAppendOutcome]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let outcome = try! h.append(pid: 5, sequence: 0, count: 4)
            outcomes.withLock { $0.append(outcome) }
        }
        let all = outcomes.withLock { $0 }
        #expect(all.filter { if case .appended = $0 { true } else { false } }.count == 1)
        #expect(all.filter { $0 == .duplicate(baseOffset: 0, lastOffset: 3) }.count == 15)
        #expect(h.log.endOffset == 4)
    }

    @Test("Rebuilt from the log after a clean restart and after a crash", arguments: [true, false])
    func rebuildAfterRestart(clean: Bool) throws {
        let h = try ProducerStateHarness()
        _ = try h.append(pid: 1, sequence: 0, count: 3)
        _ = try h.append(pid: 1, sequence: 3, count: 3)
        _ = try h.append(pid: 2, epoch: 4, sequence: 0, count: 1)
        _ = try h.append(pid: 2, epoch: 5, sequence: 0, count: 2)
        try h.restart(clean: clean)
        // The new manager knows nothing until the partition's first idempotent append rebuilds it from the log.
        #expect(try h.append(pid: 1, sequence: 3, count: 3) == .duplicate(baseOffset: 3, lastOffset: 5))
        #expect(try h.append(pid: 1, sequence: 0, count: 3) == .duplicate(baseOffset: 0, lastOffset: 2))
        #expect(h.refusal(pid: 1, sequence: 7) == .outOfOrderSequenceNumber)
        #expect(h.refusal(pid: 2, epoch: 4, sequence: 1) == .invalidProducerEpoch)
        #expect(try h.append(pid: 2, epoch: 5, sequence: 0, count: 2) == .duplicate(baseOffset: 7, lastOffset: 8))
        #expect(try h.append(pid: 1, sequence: 6) == .appended(AppendResult(baseOffset: 9, lastOffset: 9, recordCount: 1)))
    }

    @Test("The rebuild reads a bounded tail: producers only in older segments are unknown")
    func rebuildScansTheTail() throws {
        var config = ProducerStateConfig()
        let h = try ProducerStateHarness(config: config)
        _ = try h.append(pid: 1, sequence: 0, count: 2)
        try h.log.roll()
        _ = try h.append(pid: 2, sequence: 0, count: 2)
        let newestSegmentBytes = Int64(h.log.sizeBytes) / 2
        config.rebuildScanBytesMax = newestSegmentBytes
        try h.log.close()
        let again = try ProducerStateHarness(directory: h.directory, config: config)
        #expect(try again.append(pid: 2, sequence: 0, count: 2) == .duplicate(baseOffset: 2, lastOffset: 3))
        #expect(try again.append(pid: 1, sequence: 50) == .appended(AppendResult(baseOffset: 4, lastOffset: 4, recordCount: 1)),
                "producer 1 is older than the scanned tail: unknown, any sequence")
    }

    @Test("Idle producers expire; beyond the per-partition limit the least recent is forgotten")
    func expiryAndLimit() throws {
        var config = ProducerStateConfig()
        config.maxProducersPerPartition = 3
        config.producerIdExpirationMillis = 60_000
        let h = try ProducerStateHarness(config: config)
        for pid in Int64(1)...3 {
            _ = try h.append(ProducerStateHarness.batch(pid: pid, sequence: 0, timestamp: ProducerStateHarness.now + pid))
        }
        _ = try h.append(ProducerStateHarness.batch(pid: 4, sequence: 0, timestamp: ProducerStateHarness.now + 4))
        let table = h.producers.table(for: h.log)
        #expect(table.producerCount == 3)
        #expect(table.lastSequence(of: 1) == nil, "the least recently active producer was forgotten")
        table.expireProducers(nowMillis: ProducerStateHarness.now + 60_003)
        #expect(table.producerCount == 1)
        #expect(table.lastSequence(of: 4) != nil)
    }
}

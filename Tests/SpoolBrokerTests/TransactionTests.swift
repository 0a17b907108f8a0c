import Foundation
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolRecords
@testable import SpoolStorage
import Testing

/// The transaction coordinator over a real broker core and data directory: states,
/// fencing, markers, the last stable offset, aborted transactions, read_committed
/// fetches, and the state surviving a restart (a prepared transaction completed).
@Suite("Transactions")
struct TransactionTests {
    static func batch(pid: Int64, epoch: Int16, sequence: Int32, values: [String], transactional: Bool = true) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(producerId: pid, producerEpoch: epoch, baseSequence: sequence)
        for v in values { builder.append(key: nil, value: Array(v.utf8), timestamp: PartitionLog.wallClockMillis()) }
        var b = try builder.build()
        if transactional {
            let at = b.readerIndex + RecordBatchHeader.Position.attributes
            b.setInteger(b.getInteger(at: at, as: Int16.self)! | 0x10, at: at)
            RecordBatch.writeCRC(in: &b, at: b.readerIndex)
        }
        return b
    }

    final class Harness: @unchecked Sendable {
        let directory = NSTemporaryDirectory() + "spool-txn-" + UUID().uuidString
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var broker: Broker

        init() throws {
            broker = try Broker(config: BrokerConfig(dataDirectory: directory))
        }

        func restart() async throws {
            try await broker.close()
            broker = try Broker(config: BrokerConfig(dataDirectory: directory))
        }

        func produce(_ tp: TopicPartition, _ b: ByteBuffer) async throws -> PartitionProduceResult {
            try await broker.produce(tp, b, acks: .leader, on: group.next()).get()
        }

        func fetch(_ tp: TopicPartition, from offset: Int64, readCommitted: Bool) -> FetchedPartition {
            var spec = FetchSpec(partitions: [.init(tp, offset: offset, maxBytes: 1 << 20)], maxBytes: 1 << 20, minBytes: 0, maxWaitMillis: 0)
            spec.readCommitted = readCommitted
            return broker.plan(spec)[0]
        }

        func finish() async throws {
            try await broker.close()
            try await group.shutdownGracefully()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("commit and abort: markers, LSO held by an open transaction, aborted index, read_committed bounded")
    func commitAndAbort() async throws {
        let h = try Harness()
        _ = try await h.broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        let txn = h.broker.transactions
        let p = try await txn.initProducerId(transactionalId: "tx", timeoutMillis: 60_000)
        #expect(p.producerEpoch == 0)

        // Not added yet: refused.
        let early = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 0, values: ["x"]))
        #expect((early.error as? TransactionError)?.code == .invalidTxnState)

        try txn.addPartitions(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, [tp])
        #expect(txn.describe("tx")?.state == .ongoing)
        let r = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 0, values: ["a", "b"]))
        #expect(r.error == nil && r.baseOffset == 0)
        #expect(h.fetch(tp, from: 0, readCommitted: true).lastStableOffset == 0)
        #expect(h.fetch(tp, from: 0, readCommitted: true).spanBytes == 0, "read_committed stops at the open transaction")
        #expect(h.fetch(tp, from: 0, readCommitted: false).spanBytes > 0)
        #expect(try h.broker.listOffset(tp, .latest, readCommitted: true).offset == 0)

        try await txn.endTransaction(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, commit: true)
        #expect(txn.describe("tx")?.state == .completeCommit)
        #expect(try h.broker.offsets(tp).logEndOffset == 3, "two records and a COMMIT marker")
        #expect(h.fetch(tp, from: 0, readCommitted: true).lastStableOffset == 3)
        // A retried EndTxn is answered again; an empty transaction commits.
        try await txn.endTransaction(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, commit: true)

        try txn.addPartitions(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, [tp])
        _ = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 2, values: ["c"]))
        try await txn.endTransaction(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, commit: false)
        #expect(try h.broker.offsets(tp).logEndOffset == 5)
        let read = h.fetch(tp, from: 0, readCommitted: true)
        #expect(read.error == nil)
        #expect(try h.broker.transactions.partitions.aborted(h.broker.storage.partition(tp), from: 0, upTo: 10).count == 1)
        #expect(read.nextOffset == 5)
        #expect(read.lastStableOffset == 5)
        #expect(read.abortedTransactions.map(\.firstOffset) == [3])
        #expect(read.abortedTransactions.map(\.producerId) == [p.producerId])
        // Idempotence keeps working across markers: the next sequence follows.
        try txn.addPartitions(transactionalId: "tx", producerId: p.producerId, producerEpoch: 0, [tp])
        let next = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 3, values: ["d"]))
        #expect(next.error == nil && next.baseOffset == 5)

        // Restart: the aborted index and the open transaction are rebuilt from the log; state is durable.
        try await h.restart()
        #expect(h.broker.transactions.describe("tx")?.state == .ongoing)
        let after = h.fetch(tp, from: 0, readCommitted: true)
        #expect(after.lastStableOffset == 5)
        #expect(after.abortedTransactions.map(\.firstOffset) == [3])
        try await h.finish()
    }

    @Test("fencing: a new InitProducerId bumps the epoch, aborts the open transaction, fences the old epoch")
    func fencing() async throws {
        let h = try Harness()
        _ = try await h.broker.createTopic("t", partitions: 2)
        let txn = h.broker.transactions
        let tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
        let old = try await txn.initProducerId(transactionalId: "z", timeoutMillis: 60_000)
        try txn.addPartitions(transactionalId: "z", producerId: old.producerId, producerEpoch: old.producerEpoch, tps)
        for tp in tps { _ = try await h.produce(tp, Self.batch(pid: old.producerId, epoch: 0, sequence: 0, values: ["z"])) }
        let fresh = try await txn.initProducerId(transactionalId: "z", timeoutMillis: 60_000)
        #expect(fresh.producerId == old.producerId && fresh.producerEpoch == 2, "one bump for the abort, one for the new producer")
        for tp in tps {
            #expect(try h.broker.offsets(tp).logEndOffset == 2, "an ABORT marker in every partition")
            #expect(h.fetch(tp, from: 0, readCommitted: true).abortedTransactions.count == 1)
        }
        #expect(throws: TransactionError.self) {
            try txn.addPartitions(transactionalId: "z", producerId: old.producerId, producerEpoch: 0, tps)
        }
        do {
            try txn.addPartitions(transactionalId: "z", producerId: old.producerId, producerEpoch: 0, tps)
        } catch let e as TransactionError {
            #expect(e.code == .producerFenced)
        }
        let zombie = try await h.produce(tps[0], Self.batch(pid: old.producerId, epoch: 0, sequence: 1, values: ["late"]))
        #expect(zombie.error != nil, "a zombie's batch is refused")
        await #expect(throws: TransactionError.self) {
            _ = try await txn.initProducerId(transactionalId: "z", timeoutMillis: 900_001)
        }
        try await h.finish()
    }

    @Test("offsets committed in a transaction are visible only after COMMIT, dropped at ABORT")
    func transactionalOffsets() async throws {
        let h = try Harness()
        _ = try await h.broker.createTopic("in", partitions: 1)
        let txn = h.broker.transactions
        let p = try await txn.initProducerId(transactionalId: "o", timeoutMillis: 60_000)
        let tp = TopicPartition("in", 0)
        try txn.addOffsets(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, group: "g")
        try txn.commitOffsets(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, group: "g", [(tp, 7, "")])
        #expect(try h.broker.committedOffsets(group: "g").first { $0.partition == tp }?.offset ?? -1 == -1)
        try await txn.endTransaction(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, commit: true)
        #expect(try h.broker.committedOffsets(group: "g").first { $0.partition == tp }?.offset == 7)
        try txn.addOffsets(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, group: "g")
        try txn.commitOffsets(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, group: "g", [(tp, 9, "")])
        try await txn.endTransaction(transactionalId: "o", producerId: p.producerId, producerEpoch: 0, commit: false)
        #expect(try h.broker.committedOffsets(group: "g").first { $0.partition == tp }?.offset == 7)
        try await h.finish()
    }

    @Test("a transaction past its timeout is aborted and its producer fenced")
    func timeout() async throws {
        let h = try Harness()
        _ = try await h.broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        let txn = h.broker.transactions
        let p = try await txn.initProducerId(transactionalId: "slow", timeoutMillis: 1)
        try txn.addPartitions(transactionalId: "slow", producerId: p.producerId, producerEpoch: 0, [tp])
        _ = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 0, values: ["a"]))
        try await Task.sleep(nanoseconds: 20_000_000)
        await txn.abortTimedOut()
        #expect(txn.describe("slow")?.state == .completeAbort)
        #expect(txn.describe("slow")?.producerEpoch == 1)
        #expect(h.fetch(tp, from: 0, readCommitted: true).lastStableOffset == 2)
        await #expect(throws: TransactionError.self) {
            try await txn.endTransaction(transactionalId: "slow", producerId: p.producerId, producerEpoch: 0, commit: true)
        }
        try await h.finish()
    }

    @Test("a transaction prepared when the broker stopped is completed at the next start")
    func preparedIsCompletedAfterRestart() async throws {
        let h = try Harness()
        _ = try await h.broker.createTopic("t", partitions: 1)
        let tp = TopicPartition("t", 0)
        let p = try await h.broker.transactions.initProducerId(transactionalId: "crash", timeoutMillis: 60_000)
        try h.broker.transactions.addPartitions(transactionalId: "crash", producerId: p.producerId, producerEpoch: 0, [tp])
        _ = try await h.produce(tp, Self.batch(pid: p.producerId, epoch: 0, sequence: 0, values: ["a", "b"]))
        try await h.broker.close()
        // As if the broker died after storing PrepareCommit, before writing the markers.
        let store = TransactionStore(dataDirectory: h.directory, io: PosixFileIO())
        var all = try store.load()
        all["crash"]!.state = .prepareCommit
        try store.save(all)
        h.broker = try Broker(config: BrokerConfig(dataDirectory: h.directory))
        let deadline = Date().addingTimeInterval(10)
        while h.broker.transactions.describe("crash")?.state != .completeCommit && Date() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(h.broker.transactions.describe("crash")?.state == .completeCommit)
        #expect(try h.broker.offsets(tp).logEndOffset == 3)
        #expect(h.fetch(tp, from: 0, readCommitted: true).lastStableOffset == 3)
        try await h.finish()
    }
}

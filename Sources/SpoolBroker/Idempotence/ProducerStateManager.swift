import SpoolRecords
import SpoolStorage
import Synchronization

/// Idempotent producers, broker-wide: hands out producer ids (InitProducerId) and
/// keeps one ``ProducerStateTable`` per partition.
///
/// The append path wires in like this (the check and the append are one atomic
/// step per partition; batches without a producer id cost one scan of the headers):
/// ```swift
/// let validated = try log.validate(batches)
/// switch try producers.append(validated, to: log, write: { try log.append(validated: validated, &batches) }) {
/// case .appended(let result): …                   // notify readers, answer with result
/// case .duplicate(let base, let last): …          // answer with the original's offsets; nothing was written
/// }
/// ```
public final class ProducerStateManager: Sendable {
    /// A producer's identity for its idempotent batches.
    public struct ProducerIdAndEpoch: Hashable, Sendable {
        public var producerId: Int64
        public var producerEpoch: Int16
    }

    public let config: ProducerStateConfig
    let ids: ProducerIdBlockStore
    let clock: @Sendable () -> Int64
    /// Ids reserved durably and not handed out yet.
    private let unused = Mutex<Range<Int64>>(0..<0)
    /// Per partition: the log the table belongs to (a recreated topic's new log gets a new
    /// table; held strongly, so that its identity is never reused while compared) and the table.
    private let tables = Mutex<[TopicPartition: (log: PartitionLog, table: ProducerStateTable)]>([:])

    public init(
        dataDirectory: String, config: ProducerStateConfig = ProducerStateConfig(), io: FileIO = PosixFileIO(),
        clock: @escaping @Sendable () -> Int64 = PartitionLog.wallClockMillis
    ) throws {
        precondition(config.producerIdBlockSize > 0 && config.batchesPerProducer > 0)
        self.config = config
        self.clock = clock
        ids = try ProducerIdBlockStore(dataDirectory: dataDirectory, io: io)
    }

    /// InitProducerId for an idempotent (non-transactional) producer: a fresh id with
    /// epoch 0; or, given the id and epoch this broker handed out before (InitProducerId
    /// v3+), the same id with the epoch bumped, which fences the older epoch's batches
    /// (a fresh id once the epoch would overflow).
    ///
    /// Once per `producerIdBlockSize` ids this makes a durable write: call it off an event loop.
    public func initProducerId(producerId: Int64 = -1, producerEpoch: Int16 = -1) throws -> ProducerIdAndEpoch {
        if producerId >= 0, producerId < ids.nextUnreserved, producerEpoch >= 0, producerEpoch < Int16.max {
            return ProducerIdAndEpoch(producerId: producerId, producerEpoch: producerEpoch + 1)
        }
        let id = try unused.withLock { range -> Int64 in
            if range.isEmpty { range = try ids.reserve(config.producerIdBlockSize) }
            defer { range = range.dropFirst() }
            return range.lowerBound
        }
        return ProducerIdAndEpoch(producerId: id, producerEpoch: 0)
    }

    /// The state of `log`'s partition (created empty, rebuilt from the log on first append).
    public func table(for log: PartitionLog) -> ProducerStateTable {
        let tp = TopicPartition(log.topic, log.partition)
        return tables.withLock { tables in
            if let existing = tables[tp], existing.log === log { return existing.table }
            let table = ProducerStateTable(topicPartition: tp, config: config, clock: clock)
            tables[tp] = (log, table)
            return table
        }
    }

    /// Appends `batches` to `log` through the partition's producer state: `write` runs
    /// only when no batch is a duplicate or refused. Batches without a producer id go
    /// straight to `write`.
    public func append(_ batches: ProducedBatches, to log: PartitionLog, write: () throws -> AppendResult) throws -> ProducerAppendOutcome {
        guard batches.batches.contains(where: { $0.header.producerId >= 0 }) else {
            return .appended(try write())
        }
        return try table(for: log).append(batches, log: log, write: write)
    }

    /// Forgets one partition's state (its log was truncated): rebuilt from the log on next use.
    public func reset(_ tp: TopicPartition) {
        tables.withLock { tables in tables[tp]?.table.reset() }
    }

    /// Forgets the state of a deleted topic's partitions.
    public func forget(topic: String) {
        tables.withLock { tables in tables = tables.filter { $0.key.topic != topic } }
    }

    /// Forgets producers idle for longer than `producerIdExpirationMillis`, in every partition.
    public func expireProducers() {
        let now = clock()
        for table in tables.withLock({ $0.values.map(\.table) }) { table.expireProducers(nowMillis: now) }
    }
}

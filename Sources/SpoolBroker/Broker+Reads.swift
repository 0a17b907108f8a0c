import NIOCore
import SpoolRecords
import SpoolStorage

// What listeners read through the core: partitions' offsets, readers for streams, and
// the spans of a planned fetch, opened within the connection's descriptor budget.
extension Broker {
    /// The partition's offsets now.
    public func offsets(_ tp: TopicPartition) throws -> PartitionOffsets {
        try reader(tp).offsets
    }

    /// A reader of the partition as it is now (see `PartitionReader`).
    public func reader(_ tp: TopicPartition) throws -> PartitionReader {
        do {
            return PartitionReader(tp, log: try storage.partition(tp))
        } catch {
            throw BrokerError.reading(error)
        }
    }

    /// Opens the span planned for `partition`, holding one span descriptor of `budget`
    /// until the returned span is closed; counts the records as sent.
    public func openSpan(_ partition: FetchedPartition, budget: ConnectionBudget) -> SpanOpening {
        guard partition.error == nil, let planned = partition.planned, planned.span.length > 0 else { return .nothing }
        guard budget.acquireSpanDescriptor() else { return .noDescriptor }
        let descriptor: Int32
        do {
            descriptor = try planned.log.openDescriptor(for: planned.span)
        } catch {
            budget.releaseSpanDescriptor()
            return .failed(BrokerError.reading(error))
        }
        let span = planned.span
        events.metrics.topic(partition.topicPartition.topic).recordsOut(count: span.nextOffset - span.firstOffset, bytes: span.length)
        return .opened(FetchedSpan(
            topicPartition: partition.topicPartition, descriptor: descriptor, position: span.position, length: span.length,
            firstOffset: span.firstOffset, nextOffset: span.nextOffset, budget: budget))
    }

    /// Waits until every record of `tp` below `offset` is on stable storage (one group
    /// commit serves every waiter).
    public func waitUntilDurable(_ tp: TopicPartition, _ offset: Int64) async throws {
        try await BrokerError.translateAsync { try await storage.partition(tp).waitUntilDurable(offset) }
    }

    /// What the loose-record path needs to know of `topic` (ProduceRecords).
    public func looseRecordTerms(topic: String) throws -> LooseRecordTerms {
        try BrokerError.translate {
            let partitions = try storage.partitions(of: topic).count
            let config = try storage.topicConfig(topic)
            return LooseRecordTerms(
                partitions: Int32(partitions), codec: config.compression ?? .lz4, lingerMillis: config.lingerMillis,
                maxMessageBytes: config.maxMessageBytes, timestampDifferenceMaxMillis: config.timestampDifferenceMaxMillis)
        }
    }

    /// The partition count of `topic`, or nil when no such topic exists.
    public func partitionCount(of topic: String) -> Int32? {
        storage.topics.get(topic)?.partitions
    }

    /// Whether `name` follows Kafka's topic-name rules.
    public static func isValidTopicName(_ name: String) -> Bool {
        (try? TopicName.validate(name)) != nil
    }

    /// The wall clock the core stamps records and checks timestamps with (milliseconds
    /// since the epoch).
    public static func wallClockMillis() -> Int64 {
        PartitionLog.wallClockMillis()
    }
}

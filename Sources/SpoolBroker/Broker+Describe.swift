#if canImport(Glibc)
import Glibc
#endif
import SpoolRecords
import SpoolStorage

/// One idempotent producer a partition remembers (Kafka's DescribeProducers).
public struct ActiveProducer: Hashable, Sendable {
    public var producerId: Int64
    public var producerEpoch: Int16
    /// The last sequence appended, -1 when none of this epoch is remembered.
    public var lastSequence: Int32
    /// The newest batch's max timestamp (the producer's clock).
    public var lastTimestamp: Int64
}

/// The broker's one log directory (Kafka's DescribeLogDirs): the data directory, every
/// partition's bytes on disk, and the file system's size and free space.
public struct LogDirDescription: Hashable, Sendable {
    public var path: String
    public var partitions: [TopicPartition: Int64]
    /// -1 when the file system could not be asked.
    public var totalBytes: Int64
    public var usableBytes: Int64
}

// What admin clients ask of partitions' storage and producers (DescribeLogDirs, DescribeProducers).
extension Broker {
    /// The data directory and the size of every partition in it.
    public func describeLogDir() -> LogDirDescription {
        var sizes: [TopicPartition: Int64] = [:]
        for topic in storage.topics.all {
            for log in (try? storage.partitions(of: topic.name)) ?? [] {
                sizes[TopicPartition(log.topic, log.partition)] = log.sizeBytes
            }
        }
        let path = storage.config.dataDirectory
        var fs = statvfs()
        let asked = statvfs(path, &fs) == 0
        return LogDirDescription(
            path: path, partitions: sizes,
            totalBytes: asked ? Int64(fs.f_blocks) * Int64(fs.f_frsize) : -1,
            usableBytes: asked ? Int64(fs.f_bavail) * Int64(fs.f_frsize) : -1)
    }

    /// The idempotent producers `tp` remembers, by producer id.
    public func describeProducers(_ tp: TopicPartition) throws -> [ActiveProducer] {
        try BrokerError.translate {
            let log = try storage.partition(tp)
            return try producers.table(for: log).activeProducers(log: log)
        }
    }
}

import NIOCore
import SpoolRecords
import SpoolStorage

/// One partition, for a reader that comes back to it again and again (a Subscribe
/// stream, the admin record browser). Reads are located and bounded by the core, as a
/// fetch's are (`Broker.plan` reads through the same ``locate(_:from:maxBytes:)``), so a
/// bound on what consumers may read (the high watermark) is applied in one place.
///
/// A reader keeps the partition it was made for: once its topic is deleted (even if one
/// of the same name is created again), every read fails with `partitionClosed`.
public struct PartitionReader: Sendable {
    public let topicPartition: TopicPartition
    let log: PartitionLog

    init(_ topicPartition: TopicPartition, log: PartitionLog) {
        self.topicPartition = topicPartition
        self.log = log
    }

    /// The partition's offsets now.
    public var offsets: PartitionOffsets { Self.offsets(of: log) }

    /// Plans whole batches from `offset` on, up to `maxBytes` (at least one batch): the
    /// result has a span (open it with `Broker.openSpan`) unless `offset` is where
    /// consumers' reads end now. `offset` must be within the partition's offsets.
    /// Throws `BrokerError`.
    public func read(from offset: Int64, maxBytes: Int) throws -> FetchedPartition {
        var entry = FetchedPartition(topicPartition: topicPartition)
        do {
            let read = try Self.locate(log, from: offset, maxBytes: maxBytes)
            entry.highWatermark = read.highWatermark
            entry.logStartOffset = read.logStartOffset
            entry.planned = read.span.map { PlannedSpan(log: log, span: $0) }
        } catch {
            throw BrokerError.reading(error)
        }
        return entry
    }

    /// The bytes of the batches from `offset` on, up to `maxBytes` (at least one batch),
    /// copied through user space: for people and tools, never the data path. Throws
    /// `BrokerError`.
    public func readBytes(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        do {
            return try log.readBytes(from: offset, maxBytes: maxBytes)
        } catch {
            throw BrokerError.reading(error)
        }
    }

    /// The one place a consumer's read is located in the log (fetches, subscriptions):
    /// consumers read below the high watermark (the log end in single-node mode); a
    /// follower's fetch passes `upTo: nil` and reads to the log end.
    static func locate(_ log: PartitionLog, from offset: Int64, maxBytes: Int) throws -> LogReadResult {
        try locate(log, from: offset, maxBytes: maxBytes, upTo: log.highWatermark)
    }

    static func locate(_ log: PartitionLog, from offset: Int64, maxBytes: Int, upTo bound: Int64?) throws -> LogReadResult {
        try log.read(from: offset, maxBytes: maxBytes, upTo: bound)
    }

    static func offsets(of log: PartitionLog) -> PartitionOffsets {
        let range = log.fetchableOffsets
        return PartitionOffsets(logStartOffset: range.lowerBound, logEndOffset: range.upperBound,
                                highWatermark: min(log.highWatermark, range.upperBound))
    }
}

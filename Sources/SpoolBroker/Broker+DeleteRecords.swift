import SpoolRecords
import SpoolStorage

// Kafka's DeleteRecords: moving a partition's log start offset, on the I/O pool (it
// writes and fsyncs the log-start checkpoint, then deletes whole segments).
extension Broker {
    /// Deletes the records of `tp` below `offset` (-1: below the high watermark) and
    /// returns the new log start offset (the low watermark). Throws `.offsetOutOfRange`
    /// for an offset past the high watermark, `.unknownTopic`/`.unknownPartition`.
    public func deleteRecords(_ tp: TopicPartition, before offset: Int64) async throws -> Int64 {
        try await BrokerError.translateAsync {
            try await io.run { [storage] in
                let log = try storage.partition(tp)
                let target = offset == -1 ? log.highWatermark : offset
                guard target >= 0 else { throw BrokerError(.offsetOutOfRange, "offset \(offset) is not an offset of \(tp.topic)-\(tp.partition)") }
                return try log.deleteRecords(before: target)
            }
        }
    }
}

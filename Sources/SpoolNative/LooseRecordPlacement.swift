import NIOCore
import SpoolProtocol
import SpoolBroker
import SpoolRecords

/// The records of a ProduceRecords request, each checked and given its partition before
/// any is accepted: a client is never told a request failed after part of it was
/// appended. Checks the record count (`maxRecordsPerRequest`), partitions, timestamps
/// (`message.timestamp.difference.max.ms`: checked per record here, because the batch the
/// accumulator builds holds other clients' records too) and sizes (`max.message.bytes`).
struct LooseRecordPlacement {
    /// One record, placed.
    struct Placed {
        var partition: Int32
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [RecordHeader]
        var timestamp: Int64
    }

    /// Places every record or throws (a `SpoolStatusError` or `BrokerError`) for the first bad one.
    static func place(
        _ request: Spool_V1_ProduceRecordsRequest, terms: LooseRecordTerms, recordsMax: Int,
        roundRobinStart: Int32, nowMillis now: Int64
    ) throws -> [Placed] {
        guard request.records.count <= recordsMax else {
            throw SpoolStatusError(.invalidArgument, "\(request.records.count) records in one request, more than the limit of \(recordsMax)")
        }
        let partitions = terms.partitions
        var roundRobin = roundRobinStart
        var placed: [Placed] = []
        placed.reserveCapacity(request.records.count)
        for (i, record) in request.records.enumerated() {
            var partition = record.partition
            if partition < 0 {
                if record.hasKey {
                    partition = KafkaPartitioner.partition(forKey: Array(record.key), partitions: partitions)
                } else {
                    partition = (roundRobin & 0x7FFF_FFFF) % partitions
                    roundRobin &+= 1
                }
            }
            guard partition < partitions else {
                throw SpoolStatusError(.notFound, "record \(i): topic \(request.topic) has partitions 0–\(partitions - 1), not \(partition)")
            }
            let timestamp = record.timestamp == 0 ? now : record.timestamp
            let difference = terms.timestampDifferenceMaxMillis
            guard difference == .max || (timestamp >= now &- difference && timestamp <= now &+ difference) else {
                throw SpoolStatusError(.invalidArgument, "record \(i): timestamp \(timestamp) is more than message.timestamp.difference.max.ms=\(difference) from the broker's clock")
            }
            let size = record.key.count + record.value.count + record.headers.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }
            guard size + RecordBatchHeader.size <= terms.maxMessageBytes else {
                throw BrokerError(.recordTooLarge, "record \(i) of \(size) bytes does not fit in a batch of max.message.bytes=\(terms.maxMessageBytes)")
            }
            placed.append(Placed(
                partition: partition, key: record.hasKey ? Array(record.key) : nil, value: record.hasValue ? Array(record.value) : nil,
                headers: record.headers.map { RecordHeader(key: $0.key, value: $0.hasValue ? ByteBuffer(bytes: $0.value) : nil) },
                timestamp: timestamp))
        }
        return placed
    }
}

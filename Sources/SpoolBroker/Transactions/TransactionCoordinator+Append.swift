import SpoolRecords
import SpoolStorage

// The append path's part: transactional batches are checked against the coordinator
// (the producer's current epoch, the partition added to its ongoing transaction) and,
// once appended, open a transaction in the partition's index (which holds the LSO back).
extension TransactionCoordinator {
    /// Throws when a transactional batch of `produced` may not be appended to `tp`.
    func checkProduce(_ produced: ProducedBatches, _ tp: TopicPartition, log: PartitionLog) throws {
        try partitions.prepare(log)
        for (_, h) in produced.batches where h.isTransactional {
            if h.isControl {
                throw BrokerError(.invalidRequest, "producers may not write control batches")
            }
            try checkProduce(producerId: h.producerId, producerEpoch: h.producerEpoch, tp)
        }
    }

    /// Records appended transactional batches (their offsets follow from the append's base).
    func recordAppended(_ produced: ProducedBatches, at result: AppendResult, log: PartitionLog) {
        var next = result.baseOffset
        var headers: [RecordBatchHeader] = []
        for (_, h) in produced.batches {
            var h = h
            h.baseOffset = next
            next += Int64(h.recordCount)
            if h.isTransactional { headers.append(h) }
        }
        partitions.recordAppended(headers, log: log)
    }
}

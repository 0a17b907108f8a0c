import SpoolStorage

// The read side: every fetched partition reports its last stable offset; a
// read_committed fetch stops there and carries the aborted transactions of its range.
extension TransactionCoordinator {
    func bound(_ entry: inout FetchedPartition, log: PartitionLog, from offset: Int64, readCommitted: Bool) throws {
        let lso = try partitions.lastStableOffset(log, highWatermark: entry.highWatermark)
        entry.lastStableOffset = lso
        guard readCommitted else { return }
        if let planned = entry.planned {
            if let cut = try log.span(planned.span, endingBefore: lso) {
                entry.planned = PlannedSpan(log: log, span: cut)
            } else {
                entry.planned = nil
            }
        }
        let upTo = entry.planned?.span.nextOffset ?? offset
        guard upTo > offset else { return }
        entry.abortedTransactions = try partitions.aborted(log, from: offset, upTo: upTo).map { ($0.producerId, $0.firstOffset) }
    }
}

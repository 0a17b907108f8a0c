/// A transactional producer's side of its transaction (under the producer's lock): whether
/// one is open, the partitions the coordinator has added to it, and what went wrong.
struct ProducerTransaction: Sendable {
    /// Between `beginTransaction` and the end of `commitTransaction` / `abortTransaction`.
    var open = false
    /// Partitions added with AddPartitionsToTxn in the open transaction (a batch is
    /// queued for a partition only once it is here).
    var partitions: Set<PartitionRef> = []
    /// The broker knows of the transaction (a partition or offsets were added): EndTxn is
    /// needed. Otherwise the transaction is empty and ends here, as Kafka's producer ends it.
    var begunOnBroker = false
    /// The first batch of the open transaction that failed for good: the commit is refused.
    var failure: Error?
    /// A batch failed, leaving a gap in its partition's sequence: the abort bumps the epoch.
    var sequenceGap = false
    /// Set once a newer producer of the id fenced this one: every later call throws it.
    var fenced: ProducerError?

    /// Notes a batch that failed for good in the open transaction.
    mutating func failed(_ error: Error) {
        sequenceGap = true
        if failure == nil { failure = error }
        if let e = error as? ProducerError, e.code == .fenced, fenced == nil { fenced = e }
    }

    /// Throws when nothing may be sent: fenced, or no transaction open.
    func checkSendable() throws {
        if let fenced { throw fenced }
        guard open else {
            throw ProducerError(.transactionState, "no transaction is open: call beginTransaction() before sending")
        }
    }
}

/// The answer to a transaction: whether every compare held (so the success branch ran), the
/// revision after it, and what each operation of the branch that ran answered.
public struct EtcdTxnResult: Sendable, Hashable {
    public var succeeded: Bool
    public var revision: Int64
    public var responses: [EtcdOperationResult]

    /// Returns `self` when the compares held, else throws `EtcdError(.txnFailed)`.
    @discardableResult
    public func requireSucceeded() throws -> EtcdTxnResult {
        guard succeeded else { throw EtcdError(.txnFailed, "transaction compares failed at revision \(revision)") }
        return self
    }

    /// The first key the branch's range operations read, if any (the current value after a
    /// failed compare-and-swap whose failure branch reads the key).
    public var firstRangeKeyValue: EtcdKeyValue? {
        for response in responses {
            if case .range(let range) = response, let kv = range.kvs.first { return kv }
        }
        return nil
    }
}

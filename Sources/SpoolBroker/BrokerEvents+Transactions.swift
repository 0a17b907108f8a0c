import Logging

// Transactional requests a cluster's broker refuses (TransactionCoordinator.refuseAll): clients
// only see COORDINATOR_NOT_AVAILABLE and time out, so the broker says why in its log.
extension BrokerEvents {
    /// A transactional request refused in cluster mode, at warning, at most one line a second
    /// (the suppressed count in the next line). Clients retry these every few hundred ms.
    public func transactionRefused(transactionalId: String, client: String, api: String, reason: String) {
        guard let dropped = transactionRefusalLog.admit() else { return }
        var metadata: Logger.Metadata = ["transactional_id": "\(transactionalId)", "client": "\(client)", "api": "\(api)"]
        if dropped > 0 { metadata["suppressed"] = "\(dropped)" }
        logger.warning("transactional request refused: \(reason)", metadata: metadata)
    }
}

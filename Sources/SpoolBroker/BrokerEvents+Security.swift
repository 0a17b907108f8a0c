import Logging

// Authentication and authorization events: counted always, logged through a rate limit
// (`BrokerEvents.securityLinesPerSecond` lines per second for each of the two kinds; the
// next line let through says how many were dropped).
extension BrokerEvents {
    /// Most authentication lines, and most authorization-denial lines, logged per second.
    public static let securityLinesPerSecond = 20

    /// A SASL (or mutual-TLS) authentication that succeeded, at info.
    public func authenticationSucceeded(principal: String, mechanism: String, client: String, listener: String) {
        metrics.security.authentication(success: true, mechanism: mechanism)
        guard let dropped = admit(authenticationLog) else { return }
        var metadata: Logger.Metadata = [
            "principal": "\(principal)", "mechanism": "\(mechanism)", "client": "\(client)", "listener": "\(listener)"]
        if dropped > 0 { metadata["suppressed"] = "\(dropped)" }
        logger.info("authentication succeeded", metadata: metadata)
    }

    /// A refused authentication, at warning: who it claimed to be (when it got that far), how, and why.
    public func authenticationFailed(user: String?, mechanism: String, client: String, listener: String, reason: String) {
        metrics.security.authentication(success: false, mechanism: mechanism)
        guard let dropped = admit(authenticationLog) else { return }
        var metadata: Logger.Metadata = [
            "principal": "\(user.map { "User:\($0)" } ?? "unknown")", "mechanism": "\(mechanism)", "client": "\(client)",
            "listener": "\(listener)", "reason": "\(reason)"]
        if dropped > 0 { metadata["suppressed"] = "\(dropped)" }
        logger.warning("authentication failed", metadata: metadata)
    }

    /// A request (or one resource of it) the authorizer refused, at info (Kafka's authorizer logger).
    public func authorizationDenied(_ who: AccessIdentity, _ operation: AclOperation, _ type: AclResourceType, _ name: String, api: String) {
        metrics.security.denial(operation: operation, resourceType: type)
        guard let dropped = admit(denialLog) else { return }
        var metadata: Logger.Metadata = [
            "principal": "\(who.principal)", "client": "\(who.host)", "operation": "\(operation)",
            "resource": "\(type):\(name)", "api": "\(api)"]
        if dropped > 0 { metadata["suppressed"] = "\(dropped)" }
        logger.info("authorization denied", metadata: metadata)
    }

    private func admit(_ limit: RateLimitedLog) -> Int? {
        guard let dropped = limit.admit() else {
            metrics.security.suppressed.increment()
            return nil
        }
        return dropped
    }
}

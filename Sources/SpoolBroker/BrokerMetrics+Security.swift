import CoreMetrics
import Synchronization

/// Authentication and authorization metrics: `spool_authentications_total` (by result —
/// success or failure — and mechanism: PLAIN, SCRAM-SHA-256/512, TLS, and the admin HTTP
/// listener's BASIC and BEARER), `spool_authorization_denials_total` (by operation
/// and resource type) and `spool_security_log_suppressed_total` (lines the rate limit of
/// these events' log dropped).
public final class SecurityMetrics: Sendable {
    static let catalogue: [BrokerMetrics.Descriptor] = [
        .init(name: "spool_authentications_total", kind: .counter, help: "Authentications (SASL, mutual TLS, admin HTTP basic and bearer), by result (success, failure) and mechanism.", buckets: []),
        .init(name: "spool_authorization_denials_total", kind: .counter, help: "Requests (or parts of them) the authorizer refused, by operation and resource type.", buckets: []),
        .init(name: "spool_security_log_suppressed_total", kind: .counter, help: "Authentication and authorization log lines dropped by the log's rate limit.", buckets: []),
    ]

    private let factory: any MetricsFactory
    private let authentications = Mutex<[String: Counter]>([:])
    private let denials = Mutex<[String: Counter]>([:])
    let suppressed: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        suppressed = Counter(label: "spool_security_log_suppressed_total", factory: factory)
    }

    func authentication(success: Bool, mechanism: String) {
        let result = success ? "success" : "failure"
        // Only the mechanisms Spool knows become label values (a client names any string).
        let known = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "TLS", "BASIC", "BEARER"].contains(mechanism) ? mechanism : "other"
        authentications.withLock { all in
            let key = result + "/" + known
            if let counter = all[key] { return counter }
            let counter = Counter(label: "spool_authentications_total", dimensions: [("result", result), ("mechanism", known)], factory: factory)
            all[key] = counter
            return counter
        }.increment()
    }

    func denial(operation: AclOperation, resourceType: AclResourceType) {
        denials.withLock { all in
            let key = "\(operation)/\(resourceType)"
            if let counter = all[key] { return counter }
            let counter = Counter(label: "spool_authorization_denials_total",
                                  dimensions: [("operation", "\(operation)"), ("resource_type", "\(resourceType)")], factory: factory)
            all[key] = counter
            return counter
        }.increment()
    }
}

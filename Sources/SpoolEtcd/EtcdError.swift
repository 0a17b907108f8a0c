/// What went wrong talking to etcd, matched by `code` (never by `message`, which is for people).
///
/// ```swift
/// do { _ = try await client.leaseKeepAliveOnce(id) }
/// catch let error as EtcdError where error.code == .leaseNotFound { /* re-register */ }
/// ```
public struct EtcdError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure a caller can act on.
    public enum Code: Sendable, Hashable {
        /// No endpoint answered (connection refused or lost), or etcd said it cannot serve now
        /// (no leader, leader changed, request timed out inside etcd): retry later.
        case unavailable
        /// The call's deadline passed before an answer came. A write may or may not have applied.
        case timeout
        /// The revision asked for was compacted away (`compactRevision` says up to where).
        case compacted
        /// The revision asked for is in the future.
        case futureRevision
        /// The lease does not exist (expired or revoked).
        case leaseNotFound
        /// A transaction's compares did not hold where the caller required them to.
        case txnFailed
        /// etcd refused the request as malformed (bad key, too large, bad TTL, ...), or the
        /// configuration given to the client is invalid.
        case invalidArgument
        /// The answer was not what the gateway's JSON should be.
        case invalidResponse
        /// The client was shut down, or the call was cancelled.
        case cancelled
        /// Any other gRPC status etcd returned (its numeric code).
        case server(Int)
    }

    public var code: Code
    /// Human-readable detail (etcd's own message when it sent one).
    public var message: String
    /// The endpoint the last attempt went to, when there was one.
    public var endpoint: String?
    /// For `.compacted`: the oldest revision still kept (watch from here or re-read).
    public var compactRevision: Int64?

    public init(_ code: Code, _ message: String, endpoint: String? = nil, compactRevision: Int64? = nil) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.compactRevision = compactRevision
    }

    public var description: String {
        var text = "etcd \(code): \(message)"
        if let endpoint { text += " (\(endpoint))" }
        if let compactRevision { text += " [compact revision \(compactRevision)]" }
        return text
    }

    /// Maps an error the gateway returned (gRPC status code and etcd's message) onto a code.
    /// etcd uses one gRPC code for several errors (OUT_OF_RANGE is both "compacted" and "future
    /// revision"), so at this boundary only the exact constants of etcd's `rpctypes` are compared.
    static func fromGateway(grpcCode: Int, message: String, endpoint: String, isLeaseCall: Bool) -> EtcdError {
        let code: Code
        switch grpcCode {
        case 1: code = .cancelled
        case 3: code = .invalidArgument
        case 4: code = .timeout
        case 5 where isLeaseCall || message == "etcdserver: requested lease not found": code = .leaseNotFound
        case 8, 14: code = .unavailable // RESOURCE_EXHAUSTED ("too many requests"), UNAVAILABLE
        case 11:
            if message == "etcdserver: mvcc: required revision is a future revision" {
                code = .futureRevision
            } else {
                code = .compacted
            }
        default: code = .server(grpcCode)
        }
        return EtcdError(code, message, endpoint: endpoint)
    }
}

import SpoolProtocol
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure on the client's side of a call: the broker could not be reached, did not
/// answer in time, or the request was refused before it left. Match on `code`; the
/// `description` is written for the person at the terminal.
///
/// Failures the broker reports travel as `SpoolStatusError` (a status code and the
/// broker's message). `isRetriable(_:)` tells either kind apart for retry loops.
public struct SpoolClientError: Error, CustomStringConvertible, Sendable, Hashable {
    public enum Code: Sendable, Hashable {
        /// Nothing listens at the address (ECONNREFUSED), or it is unreachable.
        case connectionRefused
        /// TCP connect did not complete within `connectTimeoutMillis`.
        case connectTimeout
        /// Connected, but no handshake answer within `handshakeTimeoutMillis` (probably not a Spool broker).
        case handshakeTimeout
        /// Connected, but the peer's bytes are not Spool frames (another kind of server).
        case notASpoolBroker
        /// The host name could not be resolved.
        case unknownHost
        /// The connection broke while the call was in flight (the call may or may not have run).
        case connectionLost
        /// The call got no answer within its deadline.
        case deadlineExceeded
        /// The connection already has as many calls in flight as the broker allows (its
        /// handshake's `max_in_flight`); the call was not sent. Retry once one finished.
        case tooManyCallsInFlight
        /// The request is larger than the broker's frame limit (from the handshake); it was not sent.
        case requestTooLarge
        /// A position is outside a partition's log and the reset policy is `.none`.
        case offsetOutOfRange
        /// The connection or consumer was closed by the application.
        case closed
        /// The TLS handshake with the broker failed (untrusted certificate, wrong name, or
        /// the listener does not speak TLS).
        case tlsFailed
        /// The broker refused the SCRAM credentials (wrong password, unknown user, a
        /// mechanism it does not offer), or its server signature did not verify.
        case authenticationFailed
        /// The call cannot be made as asked (no group id for a commit, no partitions assigned, …).
        case invalidUse
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Worth retrying on a new or the same connection (after a backoff).
    public var isRetriable: Bool {
        switch code {
        case .connectionRefused, .connectTimeout, .connectionLost, .deadlineExceeded, .handshakeTimeout, .tooManyCallsInFlight: true
        default: false
        }
    }
}

/// True for failures that a retry after a backoff may cure: connection-level client
/// errors and the broker's UNAVAILABLE / RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED /
/// NOT_LEADER_OR_FOLLOWER statuses (the last after a metadata refresh: `BrokerRouter`).
public func isRetriable(_ error: Error) -> Bool {
    if let e = error as? SpoolClientError { return e.isRetriable }
    if let e = error as? SpoolStatusError {
        return [.unavailable, .resourceExhausted, .deadlineExceeded, .notLeaderOrFollower].contains(e.code)
    }
    return false
}

/// Offsets for people: a range of offsets as `0–2` (both ends included), or `empty (at 3)`.
public func describeOffsets(start: Int64, end: Int64) -> String {
    end > start ? "\(start)–\(end - 1)" : "none (the log is empty at \(start))"
}

/// The system's text for an errno value, lower-cased to sit inside a sentence ("connection refused").
func errnoText(_ code: CInt) -> String {
    String(cString: strerror(code)).lowercased()
}

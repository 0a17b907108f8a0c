/// A failure of the broker core that is not a storage or record-format error.
///
/// Listeners map the code to their own status (a native status code, a Kafka error code).
public struct BrokerError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// The request itself is invalid (bad argument, empty partition list, …).
        case invalidRequest
        /// The broker is shutting down.
        case shuttingDown
        /// The call was cancelled by the client or by its connection closing.
        case cancelled
        /// A budget was exhausted (calls, bytes, descriptors).
        case resourceExhausted
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

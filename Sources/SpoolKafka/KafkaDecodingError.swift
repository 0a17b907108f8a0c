/// Why bytes could not be decoded as a Kafka request or response.
///
/// Decoding never trusts a length it has not checked against the bytes that are
/// actually there, so a hostile or broken peer gets this error, not a crash or a
/// large allocation. Match on `code`, never on `detail`.
public struct KafkaDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Hashable, Sendable {
        /// The input ended inside a field.
        case truncated
        /// A length or count is negative (other than -1 for null), or exceeds the bytes left.
        case invalidLength
        /// A varint runs past its maximum width.
        case varintTooLong
        /// A null where the version does not allow one.
        case unexpectedNull
        /// A frame's size field is below the minimum header size or above the limit.
        case invalidFrameSize
        /// An unfinished request does not fit in the broker-wide inbound buffer budget.
        case inboundBudgetExhausted
        /// A request header names an API key Spool does not know.
        case unknownApiKey
        /// A request names a version of a known API that Spool does not support.
        case unsupportedVersion
    }

    public var code: Code
    /// Human-readable context (the field or value involved).
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "Kafka decoding error (\(code.rawValue)): \(detail)" }
}

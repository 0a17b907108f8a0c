/// What went wrong while validating, decoding or compressing record batches.
///
/// Every malformed input in `SpoolRecords` surfaces as one of these, never as a
/// crash: the broker maps them to protocol status codes (a bad CRC becomes
/// `DATA_LOSS`, an unsupported codec `INVALID_ARGUMENT`, …).
public struct RecordsError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// Fewer bytes than the header or the declared batch length needs.
        case truncated
        /// A length field that is negative, too small for a header, or inconsistent.
        case badLength
        /// A batch longer than the limit it is checked against (`max.message.bytes`).
        case batchTooLarge
        /// A magic byte other than 2 (only Kafka RecordBatch v2 is supported).
        case badMagic
        /// The stored CRC-32C does not match the bytes.
        case badCRC
        /// A varint that is longer than its type allows or runs off the end.
        case badVarint
        /// A codec id that Spool recognises but does not (yet) implement, or an unknown id.
        case unsupportedCodec
        /// The compressed records could not be decompressed.
        case corruptCompressedData
        /// Decompressing would exceed the configured size limit (a decompression bomb).
        case decompressedTooLarge
        /// A record inside the batch is malformed (bad field, count mismatch, …).
        case badRecord
        /// A record's timestamp is too far from the broker's clock (`message.timestamp.difference.max.ms`).
        case invalidTimestamp
        /// Compression failed (out of memory or a library error).
        case compressionFailed
    }

    public var code: Code
    public var message: String
    /// Byte position in the input where the problem was found, when known.
    public var position: Int?

    public init(_ code: Code, _ message: String, position: Int? = nil) {
        self.code = code
        self.message = message
        self.position = position
    }

    public var description: String {
        if let position {
            return "\(code.rawValue) at byte \(position): \(message)"
        }
        return "\(code.rawValue): \(message)"
    }
}

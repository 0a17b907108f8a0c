/// The compression codec of a record batch: bits 0–2 of the batch attributes.
///
/// Ids follow Kafka; all five of Kafka's codecs are supported. Ids 5–7 are unknown
/// and refused with `unsupportedCodec`.
public enum CompressionCodec: Int16, CaseIterable, Sendable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    /// Codecs this build can compress and decompress: all of Kafka's.
    public static let supported: [CompressionCodec] = allCases

    /// The names `init(name:)` accepts, for help texts and error messages.
    public static let supportedNames = supported.map(\.description).joined(separator: ", ")

    /// The codec for attribute bits 0–2, throwing for the unknown ids 5–7.
    public init(attributeBits: Int16) throws {
        let id = attributeBits & 0x07
        guard let codec = CompressionCodec(rawValue: id) else {
            throw RecordsError(.unsupportedCodec, "unknown compression codec id \(id)")
        }
        self = codec
    }

    /// Parses a codec name as used in configs and on the command line.
    public init?(name: String) {
        switch name.lowercased() {
        case "none", "uncompressed": self = .none
        case "gzip", "zlib": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }
}

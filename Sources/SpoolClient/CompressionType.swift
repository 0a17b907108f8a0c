import SpoolRecords

/// The codec the producer compresses each batch with, once per batch. Kafka:
/// `compression.type`. Set on ``ProducerConfig/compression``.
///
/// A struct with a static member per codec rather than an enum, so that a codec added to
/// Spool later is one more member, not a case that breaks every `switch` over the type.
///
/// ```swift
/// var config = ProducerConfig()
/// config.compression = .gzip
/// guard let codec = CompressionType(name: "lz4") else { … }   // nil for a codec this build lacks
/// print(CompressionType.supported)                            // [none, gzip, snappy, lz4, zstd]
/// ```
public struct CompressionType: Sendable, Hashable, CustomStringConvertible {
    /// The record-batch codec behind it (attribute bits of every batch written).
    let codec: CompressionCodec

    init(_ codec: CompressionCodec) {
        precondition(CompressionCodec.supported.contains(codec), "codec \(codec) is not supported by this build")
        self.codec = codec
    }

    /// Batches are sent as they are.
    public static let none = CompressionType(.none)
    /// gzip (zlib's deflate): the smallest batches of the three, the slowest.
    public static let gzip = CompressionType(.gzip)
    /// LZ4 frames: fast, the producer's default.
    public static let lz4 = CompressionType(.lz4)
    /// snappy (xerial framing, as Kafka's Java client writes it): fast, larger batches than lz4.
    public static let snappy = CompressionType(.snappy)
    /// zstd frames: close to gzip's ratio at several times its speed.
    public static let zstd = CompressionType(.zstd)

    /// The codecs this build can compress with.
    public static var supported: [CompressionType] { CompressionCodec.supported.map(CompressionType.init) }

    /// A codec by the name configs and command lines use (`none`, `gzip`, `lz4`, …);
    /// nil for an unknown name or a codec this build cannot compress with.
    public init?(name: String) {
        guard let codec = CompressionCodec(name: name), CompressionCodec.supported.contains(codec) else { return nil }
        self.codec = codec
    }

    /// The codec's name, as `init(name:)` takes it.
    public var name: String { codec.description }

    public var description: String { name }
}

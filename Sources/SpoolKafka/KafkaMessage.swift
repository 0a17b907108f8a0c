import NIOCore

/// A Kafka request or response body (or one of their nested structs), decoded and
/// encoded for a given version. The conformances are generated from `proto/kafka/`
/// by `tools/generate-kafka.py`.
public protocol KafkaMessage: Hashable, Sendable {
    /// Decodes the message as `version` lays it out.
    init(from reader: inout KafkaReader, version: Int16) throws
    /// Encodes the message as `version` lays it out.
    func write(to writer: inout KafkaWriter, version: Int16)
}

extension KafkaMessage {
    /// Decodes from the front of `buffer`, consuming the bytes read.
    public init(from buffer: inout ByteBuffer, version: Int16) throws {
        var reader = KafkaReader(buffer)
        try self.init(from: &reader, version: version)
        buffer = reader.buffer
    }

    /// Appends the encoding to `buffer`. The message must not hold deferred records.
    public func write(to buffer: inout ByteBuffer, version: Int16) {
        var writer = KafkaWriter(buffer: buffer)
        write(to: &writer, version: version)
        precondition(writer.deferredSpans.isEmpty, "deferred records need a KafkaWriter whose spans the caller sends")
        buffer = writer.buffer
    }
}

import NIOCore

/// An encoded response, ready for the socket: the int32 size, the response header and
/// the body, except for deferred records, which the sender writes at the positions
/// `deferredSpans` give (in order), between the slices of `bytes`.
public struct KafkaResponseFrame: Sendable {
    /// Size prefix, header and body bytes.
    public var bytes: ByteBuffer
    /// Where deferred records go in `bytes` (positions relative to its reader index).
    public var deferredSpans: [KafkaWriter.DeferredSpan]

    /// The size field's value: everything after it, deferred records included.
    public var sizeField: Int32 { bytes.getInteger(at: bytes.readerIndex, as: Int32.self)! }

    /// Encodes `body` as the response to `correlationId` for `api` at `version`.
    public static func encode<Body: KafkaMessage>(
        _ body: Body, correlationId: Int32, api: KafkaApiKey, version: Int16, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> KafkaResponseFrame {
        var writer = KafkaWriter(buffer: allocator.buffer(capacity: 256))
        writer.writeInt32(0)  // the size, patched below
        writer.writeInt32(correlationId)
        if api.responseHeaderVersion(version) >= 1 { writer.writeTagCount(0) }
        body.write(to: &writer, version: version)
        let size = writer.wireByteCount - 4
        precondition(size <= Int(Int32.max), "response over 2 GiB")
        writer.buffer.setInteger(Int32(size), at: writer.buffer.readerIndex)
        return KafkaResponseFrame(bytes: writer.buffer, deferredSpans: writer.deferredSpans)
    }

    /// The answer to a request Spool cannot decode (an unknown API key or an unsupported
    /// version of an API other than ApiVersions): a v0 header and UNSUPPORTED_VERSION as
    /// the first int16 of the body, which is where every client looks for it.
    public static func unsupportedVersion(correlationId: Int32) -> KafkaResponseFrame {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(6))
        buffer.writeInteger(correlationId)
        buffer.writeInteger(KafkaErrorCode.unsupportedVersion.rawValue)
        return KafkaResponseFrame(bytes: buffer, deferredSpans: [])
    }
}

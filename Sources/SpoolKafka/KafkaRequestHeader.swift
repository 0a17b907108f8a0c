import NIOCore

/// A request header (v1, or v2 with a tag section for flexible request versions).
///
/// The client id is always an int16-prefixed nullable string, even in v2, so that a
/// broker can read the header of any ApiVersions request. `apiKey` is the raw value:
/// an unknown key still has a correlation id to answer with.
public struct KafkaRequestHeader: Hashable, Sendable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String?

    public init(apiKey: Int16, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    /// The known API, if any.
    public var api: KafkaApiKey? { KafkaApiKey(rawValue: apiKey) }

    /// Whether Spool decodes this API at this version.
    public var isSupported: Bool { api?.supportedVersions.contains(apiVersion) ?? false }

    /// Reads the fixed part (key, version, correlation id, client id). Call
    /// `skipTagSection` afterwards when the request version is flexible.
    public static func decode(from reader: inout KafkaReader) throws -> KafkaRequestHeader {
        let apiKey = try reader.readInt16()
        let apiVersion = try reader.readInt16()
        let correlationId = try reader.readInt32()
        let clientId = try reader.readNullableString(compact: false)
        return KafkaRequestHeader(apiKey: apiKey, apiVersion: apiVersion, correlationId: correlationId, clientId: clientId)
    }

    /// Header v2's tag section (no tags are defined; all are skipped).
    public static func skipTagSection(from reader: inout KafkaReader) throws {
        var count = try reader.readTagCount()
        while count > 0 {
            count -= 1
            _ = try reader.readTaggedField()
        }
    }

    /// Writes the header for `api` at `version` (v2 when that version is flexible, else v1).
    public func write(to writer: inout KafkaWriter) {
        writer.writeInt16(apiKey)
        writer.writeInt16(apiVersion)
        writer.writeInt32(correlationId)
        writer.writeNullableString(clientId, compact: false)
        if let api, api.isFlexible(apiVersion) { writer.writeTagCount(0) }
    }
}

extension KafkaApiKey {
    /// Whether `version` uses the flexible encoding (compact types, tag sections).
    public func isFlexible(_ version: Int16) -> Bool {
        firstFlexibleVersion.map { version >= $0 } ?? false
    }

    /// Response header version: v1 (with a tag section) for flexible versions, except
    /// ApiVersions, whose response header is always v0 so any client can read it.
    public func responseHeaderVersion(_ version: Int16) -> Int16 {
        self != .apiVersions && isFlexible(version) ? 1 : 0
    }
}

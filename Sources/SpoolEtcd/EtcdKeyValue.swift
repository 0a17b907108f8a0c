/// A key as etcd stores it: its bytes, value and the revisions that version it.
///
/// `createRevision` is the revision of the put that created this incarnation of the key (0 if
/// absent); `modRevision` the last put's. Compare-and-swap compares one of them.
public struct EtcdKeyValue: Sendable, Hashable {
    public var keyBytes: [UInt8]
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    /// Puts since creation (1 after the first).
    public var version: Int64
    /// The lease the key is attached to (0: none).
    public var lease: Int64

    public init(keyBytes: [UInt8], value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: Int64) {
        self.keyBytes = keyBytes
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    /// The key as UTF-8 text (Spool's keys are text).
    public var key: String { String(decoding: keyBytes, as: UTF8.self) }
    /// The value as UTF-8 text.
    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

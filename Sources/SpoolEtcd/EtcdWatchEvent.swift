/// One change a watch reports: a put (the key's new value) or a delete (`kv` holds the key and
/// the deleting revision as its `modRevision`; its value is empty).
public struct EtcdWatchEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case put, delete }

    public var kind: Kind
    public var kv: EtcdKeyValue
    /// The value before this change, when the watch asked for it.
    public var previous: EtcdKeyValue?
}

/// One message of a watch: events of one or more revisions, in revision order, and the store's
/// revision when it was sent (everything up to `revision` has been reported).
public struct EtcdWatchResponse: Sendable, Hashable {
    public var events: [EtcdWatchEvent]
    public var revision: Int64
}

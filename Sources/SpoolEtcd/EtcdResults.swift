/// The answer to a range: the keys (in key order), how many matched, and the store's revision
/// when it was read (watch from `revision + 1` to miss nothing after it).
public struct EtcdRangeResult: Sendable, Hashable {
    public var kvs: [EtcdKeyValue]
    public var count: Int64
    /// More keys matched than the limit let through.
    public var more: Bool
    public var revision: Int64
}

/// The answer to a put: the revision it made, and the previous value when asked for.
public struct EtcdPutResult: Sendable, Hashable {
    public var revision: Int64
    public var previous: EtcdKeyValue?
}

/// The answer to a delete: the revision, how many keys went, and their last values when asked for.
public struct EtcdDeleteResult: Sendable, Hashable {
    public var revision: Int64
    public var deleted: Int64
    public var previous: [EtcdKeyValue]
}

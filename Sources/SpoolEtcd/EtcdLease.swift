/// A lease etcd granted: keys put under it are deleted when it expires or is revoked.
/// It expires `ttlSeconds` after the last keepalive etcd received.
public struct EtcdLease: Sendable, Hashable {
    public var id: Int64
    public var ttlSeconds: Int64
    /// The store's revision when it was granted.
    public var revision: Int64
}

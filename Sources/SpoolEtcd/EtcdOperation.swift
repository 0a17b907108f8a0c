/// One operation of a transaction's success or failure branch.
public enum EtcdOperation: Sendable, Hashable {
    /// Read keys (as `EtcdClient.range`).
    case range(EtcdKeyRange)
    /// Write a key, attached to `lease` when it is non-zero.
    case put(String, [UInt8], lease: Int64 = 0)
    /// Delete keys.
    case delete(EtcdKeyRange)

    var wire: GW.RequestOp {
        switch self {
        case .range(let range):
            let (key, end) = range.wire
            return GW.RequestOp(request_range: GW.RangeRequest(key: key, range_end: end))
        case .put(let key, let value, let lease):
            return GW.RequestOp(request_put: GW.PutRequest(key: GW.b64(key), value: GW.b64(value), lease: lease == 0 ? nil : String(lease)))
        case .delete(let range):
            let (key, end) = range.wire
            return GW.RequestOp(request_delete_range: GW.DeleteRangeRequest(key: key, range_end: end))
        }
    }
}

/// What one operation of a transaction's chosen branch answered, in the order of the operations.
public enum EtcdOperationResult: Sendable, Hashable {
    case range(EtcdRangeResult)
    case put(EtcdPutResult)
    case delete(EtcdDeleteResult)
}

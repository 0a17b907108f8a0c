/// Which keys a range, delete or watch covers: one key, every key under a prefix, or
/// `[from, to)` in byte order.
public enum EtcdKeyRange: Sendable, Hashable {
    case key(String)
    case prefix(String)
    case range(from: String, to: String)

    /// The `key` and `range_end` fields of the gateway's requests, base64.
    var wire: (key: String, rangeEnd: String?) {
        switch self {
        case .key(let key): return (GW.b64(key), nil)
        case .range(let from, let to): return (GW.b64(from), GW.b64(to))
        case .prefix(let prefix):
            return (GW.b64(prefix.isEmpty ? [0] : Array(prefix.utf8)), GW.b64(Self.prefixEnd(Array(prefix.utf8))))
        }
    }

    /// The first key after every key that starts with `prefix`: the prefix with its last byte
    /// below 0xff incremented (and what follows dropped); `[0]` (all keys) when there is none.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}

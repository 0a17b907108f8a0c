/// One condition of a transaction, on one key: its create/mod revision, version, value or lease
/// compared with a constant. A key that does not exist has create revision, mod revision and
/// version 0, so `.createRevision(k, .equal, 0)` is "create if absent" and
/// `.modRevision(k, .equal, r)` is "unchanged since I read it at r" (compare-and-swap).
public struct EtcdCompare: Sendable, Hashable {
    /// How the key's field relates to the constant.
    public enum Relation: String, Sendable, Hashable {
        case equal = "EQUAL"
        case notEqual = "NOT_EQUAL"
        case less = "LESS"
        case greater = "GREATER"
    }

    enum Target: Sendable, Hashable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }

    let key: String
    let relation: Relation
    let target: Target

    public static func createRevision(_ key: String, _ relation: Relation, _ revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, relation: relation, target: .createRevision(revision))
    }

    public static func modRevision(_ key: String, _ relation: Relation, _ revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, relation: relation, target: .modRevision(revision))
    }

    public static func version(_ key: String, _ relation: Relation, _ version: Int64) -> EtcdCompare {
        EtcdCompare(key: key, relation: relation, target: .version(version))
    }

    public static func value(_ key: String, _ relation: Relation, _ value: [UInt8]) -> EtcdCompare {
        EtcdCompare(key: key, relation: relation, target: .value(value))
    }

    public static func lease(_ key: String, _ relation: Relation, _ lease: Int64) -> EtcdCompare {
        EtcdCompare(key: key, relation: relation, target: .lease(lease))
    }

    var wire: GW.Compare {
        var compare = GW.Compare(key: GW.b64(key), target: "", result: relation.rawValue)
        switch target {
        case .version(let v): compare.target = "VERSION"; compare.version = String(v)
        case .createRevision(let r): compare.target = "CREATE"; compare.create_revision = String(r)
        case .modRevision(let r): compare.target = "MOD"; compare.mod_revision = String(r)
        case .value(let v): compare.target = "VALUE"; compare.value = GW.b64(v)
        case .lease(let l): compare.target = "LEASE"; compare.lease = String(l)
        }
        return compare
    }
}

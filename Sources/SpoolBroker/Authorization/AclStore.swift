import NIOConcurrencyHelpers
import SpoolStorage

/// The persisted ACLs (`acls.meta` in the data directory), rewritten atomically on every
/// change (temporary file, fsync, rename). Format: a version line, then one line per ACL —
/// `type<TAB>pattern<TAB>name<TAB>principal<TAB>host<TAB>operation<TAB>permission` with the
/// wire codes as numbers and the text fields percent-escaped (`FieldEscaping`).
public final class AclStore: Sendable {
    public static let fileName = "acls.meta"
    static let header = "spool-acls v1"
    /// Most ACLs kept (each is checked on every authorized request).
    public static let maxAcls = 100_000

    let path: String
    let io: FileIO
    private let acls = NIOLockedValueBox<Set<AclBinding>>([])
    private let writer = NIOLock()
    /// Cluster mode: no file; the cluster layer sets the contents (`replaceAll`).
    public let isReplicated: Bool

    /// An empty store that the cluster layer fills (`replaceAll`); nothing is written to files.
    public init(replicated: Void) {
        path = ""
        io = PosixFileIO()
        isReplicated = true
    }

    /// Cluster mode: replaces every ACL with what the cluster's metadata holds.
    public func replaceAll(_ next: Set<AclBinding>) {
        precondition(isReplicated, "only a replicated ACL store takes its contents from the cluster")
        acls.withLockedValue { $0 = next }
    }

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        path = dataDirectory + "/" + Self.fileName
        self.io = io
        isReplicated = false
        guard let bytes = try Directory.readFile(path, io: io) else { return }
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.first == Substring(Self.header) else { throw StorageError(.corrupt, "\(path) does not start with '\(Self.header)'") }
        lines.removeFirst()
        var loaded = Set<AclBinding>()
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 7, let type = Int8(f[0]).flatMap(AclResourceType.init), let pattern = Int8(f[1]).flatMap(AclPatternType.init),
                  let name = FieldEscaping.unescape(f[2]), let principal = FieldEscaping.unescape(f[3]), let host = FieldEscaping.unescape(f[4]),
                  let operation = Int8(f[5]).flatMap(AclOperation.init), let permission = Int8(f[6]).flatMap(AclPermission.init) else {
                throw StorageError(.corrupt, "\(path): bad line '\(line)'")
            }
            let acl = AclBinding(resourceType: type, resourceName: name, patternType: pattern, principal: principal, host: host,
                                 operation: operation, permission: permission)
            if let reason = acl.invalidReason { throw StorageError(.corrupt, "\(path): \(reason)") }
            loaded.insert(acl)
        }
        acls.withLockedValue { $0 = loaded }
    }

    /// Every ACL.
    public var all: Set<AclBinding> { acls.withLockedValue { $0 } }

    /// Adds ACLs (already valid); those already present are kept once.
    public func add(_ new: [AclBinding]) throws {
        try change { $0.formUnion(new) }
    }

    /// Removes and returns the ACLs each filter matches (one list per filter).
    public func remove(_ filters: [AclBindingFilter]) throws -> [[AclBinding]] {
        var removed: [[AclBinding]] = []
        try change { set in
            removed = filters.map { filter in set.filter(filter.matches).sorted { $0.description < $1.description } }
            for list in removed { set.subtract(list) }
        }
        return removed
    }

    private func change(_ body: (inout Set<AclBinding>) throws -> Void) throws {
        guard !isReplicated else { throw StorageError(.invalidConfig, "ACLs change through the cluster in cluster mode") }
        try writer.withLock {
            var next = all
            try body(&next)
            guard next.count <= Self.maxAcls else {
                throw StorageError(.invalidConfig, "\(next.count) ACLs is over the limit of \(Self.maxAcls)")
            }
            var text = Self.header + "\n"
            for acl in next.sorted(by: { $0.description < $1.description }) {
                text += [String(acl.resourceType.rawValue), String(acl.patternType.rawValue), FieldEscaping.escape(acl.resourceName),
                         FieldEscaping.escape(acl.principal), FieldEscaping.escape(acl.host), String(acl.operation.rawValue),
                         String(acl.permission.rawValue)].joined(separator: "\t") + "\n"
            }
            try Directory.writeAtomically(Array(text.utf8), to: path, io: io)
            acls.withLockedValue { $0 = next }
        }
    }
}

/// A topic's `cleanup.policy`: what happens to closed segments. `delete` (Kafka's default)
/// removes whole segments by `retention.ms` / `retention.bytes`; `compact` keeps the last
/// record of every key (the log cleaner); `compact,delete` does both.
public struct CleanupPolicy: Hashable, Sendable, CustomStringConvertible {
    public var compact: Bool
    public var delete: Bool

    public init(compact: Bool, delete: Bool) {
        precondition(compact || delete, "a cleanup policy does at least one thing")
        self.compact = compact
        self.delete = delete
    }

    public static let deleteOnly = CleanupPolicy(compact: false, delete: true)
    public static let compactOnly = CleanupPolicy(compact: true, delete: false)

    /// Parses Kafka's list form: `delete`, `compact`, `compact,delete` (either order, spaces allowed).
    public init?(name: String) {
        let parts = name.split(separator: ",").map { $0.trimmingCharacters() }
        guard !parts.isEmpty, parts.allSatisfy({ $0 == "compact" || $0 == "delete" }) else { return nil }
        self.init(compact: parts.contains("compact"), delete: parts.contains("delete"))
    }

    public var description: String {
        switch (compact, delete) {
        case (true, true): "compact,delete"
        case (true, false): "compact"
        default: "delete"
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

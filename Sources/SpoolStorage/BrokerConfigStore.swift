import Synchronization

/// The dynamic broker settings set through Kafka's AlterConfigs / IncrementalAlterConfigs
/// on a BROKER resource (`broker-configs.meta` in the data directory), rewritten atomically
/// on every change like `topics.meta`. Format: a line per setting —
/// `scope<TAB>key<TAB>value` — with scope `*` (the cluster default) or a node id (the
/// broker's own settings), and the key
/// and value percent-encoded. Kafka keeps such settings for plugins it does not know itself;
/// Spool keeps them the same way (its own settings are static: see `Broker`).
public final class BrokerConfigStore: Sendable {
    public static let fileName = "broker-configs.meta"
    static let header = "spool-broker-configs v1"
    /// Most settings kept per scope.
    public static let maxSettingsPerScope = 1_000
    /// Longest key or value accepted, in UTF-8 bytes.
    public static let maxFieldBytes = 32 << 10

    let path: String
    let io: FileIO
    private let settings: Mutex<[String: [String: String]]>
    private let writer = Mutex(())

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        path = dataDirectory + "/" + Self.fileName
        self.io = io
        var loaded: [String: [String: String]] = [:]
        for line in try MetadataFile.readLines(path, header: Self.header, io: io) ?? [] {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3, let key = FieldEscaping.unescape(fields[1]), let value = FieldEscaping.unescape(fields[2]) else {
                throw StorageError(.corrupt, "\(path): bad line '\(line)'")
            }
            let scope = String(fields[0])
            guard Self.isScope(scope) else { throw StorageError(.corrupt, "\(path): bad scope '\(scope)'") }
            loaded[scope, default: [:]][key] = value
        }
        settings = Mutex(loaded)
    }

    /// The scope of the cluster-wide defaults.
    public static let clusterDefaultScope = "*"

    /// Whether `scope` is `*` or a node id.
    public static func isScope(_ scope: String) -> Bool { scope == clusterDefaultScope || Int32(scope) != nil }

    /// The settings of one scope.
    public func get(_ scope: String) -> [String: String] { settings.withLock { $0[scope] ?? [:] } }

    /// Replaces a scope's settings (an empty set removes the scope); checks the limits first.
    public func replace(_ scope: String, _ values: [String: String]) throws {
        precondition(Self.isScope(scope), "a broker config scope is * or a node id")
        try Self.validate(values)
        try writer.withLock { _ in
            var next = settings.withLock { $0 }
            if values.isEmpty { next.removeValue(forKey: scope) } else { next[scope] = values }
            var lines: [String] = []
            for (scope, values) in next {
                for (key, value) in values {
                    lines.append("\(scope)\t\(FieldEscaping.escape(key))\t\(FieldEscaping.escape(value))")
                }
            }
            try MetadataFile.write(path, header: Self.header, lines: lines.sorted(), io: io)
            settings.withLock { $0 = next }
        }
    }

    /// Throws `.invalidConfig` for an empty key, a field over `maxFieldBytes` or too many settings.
    public static func validate(_ values: [String: String]) throws {
        guard values.count <= maxSettingsPerScope else {
            throw StorageError(.invalidConfig, "at most \(maxSettingsPerScope) dynamic broker settings, not \(values.count)")
        }
        for (key, value) in values {
            guard !key.isEmpty else { throw StorageError(.invalidConfig, "a broker setting needs a name") }
            guard key.utf8.count <= maxFieldBytes, value.utf8.count <= maxFieldBytes else {
                throw StorageError(.invalidConfig, "broker setting \(key.prefix(64)): name and value are limited to \(maxFieldBytes) bytes")
            }
        }
    }
}

import SpoolRecords
import Synchronization

/// The persisted client quotas (`client-quotas.meta` in the data directory), rewritten
/// atomically on every change like `topics.meta`. Format: a line per entity —
/// `user<TAB>client-id<TAB>key=value…` — where a part is `-` (absent), `*` (default) or
/// `=` followed by the percent-encoded name.
public final class ClientQuotaStore: Sendable {
    public static let fileName = "client-quotas.meta"
    static let header = "spool-client-quotas v1"
    /// The largest rate accepted (bytes per second); a rate must be positive.
    public static let maxByteRate: Int64 = 1 << 50

    let path: String
    let io: FileIO
    private let quotas: Mutex<[QuotaEntity: QuotaValues]>
    private let writer = Mutex(())
    /// Cluster mode: no file; the cluster layer sets the contents (`replaceAll`).
    public let isReplicated: Bool

    /// An empty store that the cluster layer fills (`replaceAll`); nothing is written to files.
    public init(replicated: Void) {
        path = ""
        io = PosixFileIO()
        quotas = Mutex([:])
        isReplicated = true
    }

    /// Cluster mode: replaces every quota with what the cluster's metadata holds.
    public func replaceAll(_ next: [QuotaEntity: QuotaValues]) {
        precondition(isReplicated, "only a replicated quota store takes its contents from the cluster")
        quotas.withLock { $0 = next }
    }

    /// Throws `invalidConfig` unless every rate set is in 1...`maxByteRate`.
    public static func validate(_ values: QuotaValues) throws {
        for rate in [values.producerByteRate, values.consumerByteRate].compactMap({ $0 }) {
            guard rate > 0 && rate <= maxByteRate else {
                throw StorageError(.invalidConfig, "a byte rate must be between 1 and \(maxByteRate) bytes/s, not \(rate)")
            }
        }
    }

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        path = dataDirectory + "/" + Self.fileName
        self.io = io
        isReplicated = false
        var loaded: [QuotaEntity: QuotaValues] = [:]
        for line in try MetadataFile.readLines(path, header: Self.header, io: io) ?? [] {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 2 else { throw StorageError(.corrupt, "\(path): bad line '\(line)'") }
            let user = try Self.part(fields[0]), clientId = try Self.part(fields[1])
            guard user != nil || clientId != nil else { throw StorageError(.corrupt, "\(path): a line names no entity") }
            let entity = QuotaEntity(user: user, clientId: clientId)
            var values = QuotaValues()
            for field in fields.dropFirst(2) {
                let kv = field.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let rate = Int64(kv[1]) else { throw StorageError(.corrupt, "\(path): bad field '\(field)'") }
                switch kv[0] {
                case "producer_byte_rate": values.producerByteRate = rate
                case "consumer_byte_rate": values.consumerByteRate = rate
                default: break // a later version's key: kept out, not fatal
                }
            }
            loaded[entity] = values
        }
        quotas = Mutex(loaded)
    }

    /// Every entity with a quota.
    public var all: [QuotaEntity: QuotaValues] { quotas.withLock { $0 } }

    /// The values set for exactly this entity.
    public func get(_ entity: QuotaEntity) -> QuotaValues? { quotas.withLock { $0[entity] } }

    /// Replaces the entity's values (empty values remove it); validates the rates first.
    public func set(_ entity: QuotaEntity, _ values: QuotaValues) throws {
        for rate in [values.producerByteRate, values.consumerByteRate].compactMap({ $0 }) {
            guard rate > 0 && rate <= Self.maxByteRate else {
                throw StorageError(.invalidConfig, "a byte rate must be between 1 and \(Self.maxByteRate) bytes/s, not \(rate)")
            }
        }
        guard !isReplicated else { throw StorageError(.invalidConfig, "client quotas change through the cluster in cluster mode") }
        try writer.withLock { _ in
            var next = quotas.withLock { $0 }
            if values.isEmpty { next.removeValue(forKey: entity) } else { next[entity] = values }
            try MetadataFile.write(path, header: Self.header, lines: next.map(Self.line).sorted(), io: io)
            quotas.withLock { $0 = next }
        }
    }

    static func line(_ entity: QuotaEntity, _ values: QuotaValues) -> String {
        var fields = [encode(entity.user), encode(entity.clientId)]
        if let rate = values.producerByteRate { fields.append("producer_byte_rate=\(rate)") }
        if let rate = values.consumerByteRate { fields.append("consumer_byte_rate=\(rate)") }
        return fields.joined(separator: "\t")
    }

    static func encode(_ part: QuotaEntity.Part?) -> String {
        switch part {
        case nil: return "-"
        case .defaultEntity: return "*"
        case .name(let name): return "=" + FieldEscaping.escape(name)
        }
    }

    /// nil for `-` (absent); throws on anything unreadable.
    static func part(_ field: Substring) throws -> QuotaEntity.Part? {
        if field == "-" { return nil }
        if field == "*" { return .defaultEntity }
        guard field.first == "=", let name = FieldEscaping.unescape(field.dropFirst()) else {
            throw StorageError(.corrupt, "bad quota entity part '\(field)'")
        }
        return .name(name)
    }
}

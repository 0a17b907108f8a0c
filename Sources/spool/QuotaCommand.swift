import ArgumentParser
import Foundation
import NIOCore
import SpoolKafka

/// `spool quota`: client quotas (produce and fetch byte rates per user and client id),
/// over the broker's Kafka listener with Kafka's own AlterClientQuotas and
/// DescribeClientQuotas (what `kafka-configs.sh --entity-type clients|users` sends).
struct QuotaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota",
        abstract: "Set, list and remove client quotas (producer_byte_rate, consumer_byte_rate).",
        subcommands: [QuotaSetCommand.self, QuotaListCommand.self, QuotaRemoveCommand.self]
    )
}

/// Which entity a quota command is about, and where the Kafka listener is.
struct QuotaEntityOptions: ParsableArguments {
    @Option(help: "The Kafka listener as HOST:PORT (spool broker --kafka-listen).") var kafka = "127.0.0.1:9092"
    @Option(help: "A user name (the SASL principal; ANONYMOUS without SASL).") var user: String?
    @Flag(help: "The default for every user without a quota of its own.") var defaultUser = false
    @Option(help: "A client id (the client.id the client sends).") var clientId: String?
    @Flag(help: "The default for every client id without a quota of its own.") var defaultClient = false

    func validate() throws {
        guard !(user != nil && defaultUser) else { throw ValidationError("give --user or --default-user, not both") }
        guard !(clientId != nil && defaultClient) else { throw ValidationError("give --client-id or --default-client, not both") }
    }

    var hasEntity: Bool { user != nil || defaultUser || clientId != nil || defaultClient }

    /// The entity in Kafka's terms: (type, name or nil for the default).
    var entity: [(type: String, name: String?)] {
        var parts: [(String, String?)] = []
        if let user { parts.append(("user", user)) } else if defaultUser { parts.append(("user", nil)) }
        if let clientId { parts.append(("client-id", clientId)) } else if defaultClient { parts.append(("client-id", nil)) }
        return parts
    }

    func connect() throws -> KafkaBlockingConnection {
        try Self.connect(kafka, clientId: "spool-quota")
    }

    /// A connection to the Kafka listener at `address` (HOST:PORT; the host an IPv4 address or localhost).
    static func connect(_ address: String, clientId: String) throws -> KafkaBlockingConnection {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("--kafka must be HOST:PORT (got '\(address)')")
        }
        let host = String(address[..<colon])
        do {
            return try KafkaBlockingConnection(host: host == "localhost" ? "127.0.0.1" : host, port: port, clientId: clientId, timeoutSeconds: 10)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// Sends one AlterClientQuotas entry and fails with the broker's message if refused.
    func alter(_ ops: [AlterClientQuotasRequest.Entry.Op]) throws {
        let request = AlterClientQuotasRequest(entries: [.init(
            entity: entity.map { .init(entityType: $0.type, entityName: $0.name) }, ops: ops)])
        var body = try connect().call(.alterClientQuotas, version: 0, request)
        let answer = try AlterClientQuotasResponse(from: &body, version: 0)
        for entry in answer.entries where entry.errorCode != 0 {
            throw CLIError("refused (\(KafkaErrorCode(rawValue: entry.errorCode).map { "\($0)" } ?? "error \(entry.errorCode)")): \(entry.errorMessage ?? "")")
        }
    }
}

/// `spool quota set (--user U | --default-user) [--client-id C | --default-client] --producer-byte-rate N --consumer-byte-rate N`
struct QuotaSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set an entity's byte rates (bytes per second); other rates it has stay.",
        discussion: """
            Examples:
              spool quota set --client-id loadgen --producer-byte-rate 10485760
              spool quota set --default-user --consumer-byte-rate 52428800
            A client over its rate gets its answers held (Kafka's throttle_time_ms).
            """
    )

    @OptionGroup var target: QuotaEntityOptions
    @Option(help: "Produce bytes per second.") var producerByteRate: Int64?
    @Option(help: "Fetch bytes per second.") var consumerByteRate: Int64?

    func validate() throws {
        guard target.hasEntity else { throw ValidationError("name an entity: --user, --default-user, --client-id or --default-client") }
        guard producerByteRate != nil || consumerByteRate != nil else { throw ValidationError("give --producer-byte-rate and/or --consumer-byte-rate") }
        for rate in [producerByteRate, consumerByteRate].compactMap({ $0 }) where rate <= 0 {
            throw ValidationError("a byte rate must be positive (got \(rate))")
        }
    }

    func run() async throws {
        var ops: [AlterClientQuotasRequest.Entry.Op] = []
        if let rate = producerByteRate { ops.append(.init(key: "producer_byte_rate", value: Double(rate), remove: false)) }
        if let rate = consumerByteRate { ops.append(.init(key: "consumer_byte_rate", value: Double(rate), remove: false)) }
        try target.alter(ops)
        print("set \(QuotaListCommand.describe(target.entity))")
    }
}

/// `spool quota remove ENTITY [--producer-byte-rate] [--consumer-byte-rate]`
struct QuotaRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove an entity's byte rates (both unless one is named).")

    @OptionGroup var target: QuotaEntityOptions
    @Flag(help: "Remove only the produce rate.") var producerByteRate = false
    @Flag(help: "Remove only the fetch rate.") var consumerByteRate = false

    func validate() throws {
        guard target.hasEntity else { throw ValidationError("name an entity: --user, --default-user, --client-id or --default-client") }
    }

    func run() async throws {
        let both = !producerByteRate && !consumerByteRate
        var ops: [AlterClientQuotasRequest.Entry.Op] = []
        if both || producerByteRate { ops.append(.init(key: "producer_byte_rate", value: 0, remove: true)) }
        if both || consumerByteRate { ops.append(.init(key: "consumer_byte_rate", value: 0, remove: true)) }
        try target.alter(ops)
        print("removed from \(QuotaListCommand.describe(target.entity))")
    }
}

/// `spool quota list [ENTITY]`: every quota, or those matching the entity given.
struct QuotaListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List client quotas.")

    @OptionGroup var target: QuotaEntityOptions
    @Flag(help: "Print JSON.") var json = false

    static func describe(_ entity: [(type: String, name: String?)]) -> String {
        entity.map { "\($0.type)=\($0.name ?? "<default>")" }.joined(separator: ",")
    }

    func run() async throws {
        let components = target.entity.map { DescribeClientQuotasRequest.Component(entityType: $0.type, matchType: $0.name == nil ? 1 : 0, match: $0.name) }
        var body = try target.connect().call(.describeClientQuotas, version: 0, DescribeClientQuotasRequest(components: components, strict: false))
        let answer = try DescribeClientQuotasResponse(from: &body, version: 0)
        guard answer.errorCode == 0 else { throw CLIError("refused: \(answer.errorMessage ?? "error \(answer.errorCode)")") }
        let entries = answer.entries ?? []
        if json {
            let objects: [[String: Any]] = entries.map { entry in
                var object: [String: Any] = [:]
                for part in entry.entity { object[part.entityType] = part.entityName ?? "<default>" }
                for value in entry.values { object[value.key] = Int64(value.value) }
                return object
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        if entries.isEmpty { print("no quotas"); return }
        for entry in entries {
            let values = entry.values.map { "\($0.key)=\(Int64($0.value))" }.joined(separator: " ")
            print("\(Self.describe(entry.entity.map { ($0.entityType, $0.entityName) }))  \(values)")
        }
    }
}

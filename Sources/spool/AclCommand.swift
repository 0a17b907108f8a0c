import ArgumentParser
import Foundation
import SpoolKafka

/// `spool acl add|list|remove`: Kafka ACLs over the broker's Kafka listener (CreateAcls,
/// DescribeAcls, DeleteAcls), with kafka-acls.sh's flags.
struct AclCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Add, list and remove ACLs (checked when the broker runs with authorizer.enabled=true).",
        subcommands: [AclAddCommand.self, AclListCommand.self, AclRemoveCommand.self]
    )
}

/// The resource and who, as kafka-acls.sh names them.
struct AclOptions: ParsableArguments {
    @Option(help: "The Kafka listener as HOST:PORT.") var kafka = "127.0.0.1:9092"
    @Option(help: "Log in as this user on a SASL_PLAINTEXT listener (password from standard input or a prompt).") var saslUser: String?
    @Option(help: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with --sasl-user). Default: SCRAM-SHA-512.") var saslMechanism = "SCRAM-SHA-512"
    @Flag(help: "Read the --sasl-user password from the first line of standard input.") var passwordStdin = false
    @Option(help: "A topic name (or * for every topic).") var topic: String?
    @Option(help: "A consumer group id.") var group: String?
    @Option(help: "A transactional id.") var transactionalId: String?
    @Flag(help: "The cluster resource (kafka-cluster).") var cluster = false
    @Option(help: "literal (default for add) or prefixed; for list and remove also any and match.") var resourcePatternType: String?
    @Option(help: "Principal allowed, as User:NAME (User:* for everyone); may repeat.") var allowPrincipal: [String] = []
    @Option(help: "Principal denied; may repeat.") var denyPrincipal: [String] = []
    @Option(help: "Host the allowed principals connect from (default *).") var allowHost: String?
    @Option(help: "Host the denied principals connect from (default *).") var denyHost: String?
    @Option(help: "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All; may repeat.") var operation: [String] = []

    static let operations: [String: Int8] = [
        "all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7, "describe": 8, "clusteraction": 9,
        "describeconfigs": 10, "alterconfigs": 11, "idempotentwrite": 12,
    ]
    static let operationNames = Dictionary(uniqueKeysWithValues: operations.map { ($0.value, $0.key) })
    static let patterns: [String: Int8] = ["any": 1, "match": 2, "literal": 3, "prefixed": 4]
    static let types: [Int8: String] = [2: "topic", 3: "group", 4: "cluster", 5: "transactional-id"]

    /// (type code, name) of the resource named, nil when none is.
    func resource() throws -> (type: Int8, name: String)? {
        let named = [topic.map { (Int8(2), $0) }, group.map { (Int8(3), $0) }, transactionalId.map { (Int8(5), $0) },
                     cluster ? (Int8(4), "kafka-cluster") : nil].compactMap { $0 }
        guard named.count <= 1 else { throw ValidationError("name one resource: --topic, --group, --transactional-id or --cluster") }
        return named.first
    }

    func pattern(default value: Int8) throws -> Int8 {
        guard let text = resourcePatternType else { return value }
        guard let code = Self.patterns[text.lowercased()] else { throw ValidationError("--resource-pattern-type is literal, prefixed, any or match (got '\(text)')") }
        return code
    }

    func operationCodes() throws -> [Int8] {
        try operation.map { text in
            guard let code = Self.operations[text.lowercased()] else { throw ValidationError("unknown --operation '\(text)'") }
            return code
        }
    }

    /// (principal, host, permission code) pairs from the allow and deny options.
    var principals: [(principal: String, host: String, permission: Int8)] {
        allowPrincipal.map { ($0, allowHost ?? "*", 3) } + denyPrincipal.map { ($0, denyHost ?? "*", 2) }
    }

    func connect() throws -> KafkaBlockingConnection {
        let connection = try QuotaEntityOptions.connect(kafka, clientId: "spool-acl")
        if let saslUser {
            let password = try readPassword(fromStdin: passwordStdin, prompt: "Password for \(saslUser): ")
            do {
                try connection.authenticate(mechanism: saslMechanism, user: saslUser, password: password)
            } catch {
                throw CLIError("\(error)")
            }
        }
        return connection
    }

    static func describe(type: Int8, name: String, pattern: Int8, principal: String, host: String, operation: Int8, permission: Int8) -> String {
        let patternName = patterns.first { $0.value == pattern }?.key ?? "\(pattern)"
        return "\(permission == 3 ? "ALLOW" : "DENY") \(principal) from \(host) \(operationNames[operation] ?? "\(operation)") on \(types[type] ?? "\(type)") \(patternName) \(name)"
    }
}

/// `spool acl add --allow-principal User:alice --operation Read --topic orders`
struct AclAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add ACLs: each principal × each operation on the resource.",
        discussion: """
            Examples:
              spool acl add --allow-principal User:alice --operation Read --operation Describe --topic orders
              spool acl add --allow-principal User:etl --operation Write --topic raw. --resource-pattern-type prefixed
              spool acl add --deny-principal User:mallory --operation All --cluster
            """)

    @OptionGroup var options: AclOptions

    func validate() throws {
        guard try options.resource() != nil else { throw ValidationError("name a resource: --topic, --group, --transactional-id or --cluster") }
        guard !options.principals.isEmpty else { throw ValidationError("give --allow-principal and/or --deny-principal") }
        guard !options.operation.isEmpty else { throw ValidationError("give at least one --operation") }
        _ = try options.operationCodes()
        let pattern = try options.pattern(default: 3)
        guard pattern == 3 || pattern == 4 else { throw ValidationError("an ACL's --resource-pattern-type is literal or prefixed") }
    }

    func run() async throws {
        let (type, name) = try options.resource()!
        let pattern = try options.pattern(default: 3)
        var creations: [CreateAclsRequest.Creation] = []
        for who in options.principals {
            for operation in try options.operationCodes() {
                creations.append(.init(resourceType: type, resourceName: name, resourcePatternType: pattern, principal: who.principal,
                                       host: who.host, operation: operation, permissionType: who.permission))
            }
        }
        var body = try options.connect().call(.createAcls, version: 1, CreateAclsRequest(creations: creations))
        let answer = try CreateAclsResponse(from: &body, version: 1)
        for (creation, result) in zip(creations, answer.results) {
            let text = AclOptions.describe(type: type, name: name, pattern: pattern, principal: creation.principal, host: creation.host,
                                           operation: creation.operation, permission: creation.permissionType)
            if result.errorCode != 0 { throw CLIError("refused: \(text): \(result.errorMessage ?? "error \(result.errorCode)")") }
            print("added: \(text)")
        }
    }
}

/// Filter fields shared by list and remove.
extension AclOptions {
    func filter() throws -> (type: Int8, name: String?, pattern: Int8, principal: String?, host: String?, operation: Int8, permission: Int8) {
        let resource = try resource()
        guard principals.count <= 1 else { throw ValidationError("a filter names at most one principal") }
        let codes = try operationCodes()
        guard codes.count <= 1 else { throw ValidationError("a filter names at most one --operation") }
        let who = principals.first
        return (resource?.type ?? 1, resource?.name, try pattern(default: resource == nil ? 1 : 3), who?.principal,
                who.flatMap { $0.permission == 3 ? allowHost : denyHost }, codes.first ?? 1, who?.permission ?? 1)
    }
}

/// `spool acl list [filter]`
struct AclListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the ACLs matching a filter (every ACL without one).")
    @OptionGroup var options: AclOptions

    func run() async throws {
        let f = try options.filter()
        let request = DescribeAclsRequest(resourceTypeFilter: f.type, resourceNameFilter: f.name, patternTypeFilter: f.pattern,
                                          principalFilter: f.principal, hostFilter: f.host, operation: f.operation, permissionType: f.permission)
        var body = try options.connect().call(.describeAcls, version: 1, request)
        let answer = try DescribeAclsResponse(from: &body, version: 1)
        guard answer.errorCode == 0 else { throw CLIError("refused: \(answer.errorMessage ?? "error \(answer.errorCode)")") }
        let lines = answer.resources.flatMap { r in
            r.acls.map { AclOptions.describe(type: r.resourceType, name: r.resourceName, pattern: r.patternType, principal: $0.principal,
                                             host: $0.host, operation: $0.operation, permission: $0.permissionType) }
        }
        print(lines.isEmpty ? "no ACLs" : lines.joined(separator: "\n"))
    }
}

/// `spool acl remove FILTER`: at least a resource or a principal.
struct AclRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove the ACLs matching a filter (a resource or a principal at least).")
    @OptionGroup var options: AclOptions

    func validate() throws {
        guard try options.resource() != nil || !options.principals.isEmpty else {
            throw ValidationError("name a resource or a principal: removing every ACL takes an explicit filter")
        }
    }

    func run() async throws {
        let f = try options.filter()
        let request = DeleteAclsRequest(filters: [.init(resourceTypeFilter: f.type, resourceNameFilter: f.name, patternTypeFilter: f.pattern,
                                                        principalFilter: f.principal, hostFilter: f.host, operation: f.operation, permissionType: f.permission)])
        var body = try options.connect().call(.deleteAcls, version: 1, request)
        let answer = try DeleteAclsResponse(from: &body, version: 1)
        for result in answer.filterResults {
            guard result.errorCode == 0 else { throw CLIError("refused: \(result.errorMessage ?? "error \(result.errorCode)")") }
            for acl in result.matchingAcls {
                print("removed: " + AclOptions.describe(type: acl.resourceType, name: acl.resourceName, pattern: acl.patternType, principal: acl.principal,
                                                         host: acl.host, operation: acl.operation, permission: acl.permissionType))
            }
            if result.matchingAcls.isEmpty { print("no ACLs matched") }
        }
    }
}

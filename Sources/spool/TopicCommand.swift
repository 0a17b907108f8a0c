import ArgumentParser
import SpoolClient
import SpoolProtocol

/// `spool topic …`: create, list, describe, alter and delete topics.
struct TopicCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topic",
        abstract: "Manage topics.",
        subcommands: [Create.self, List.self, Describe.self, Alter.self, Delete.self, Recover.self, ReassignCommand.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a topic.",
            discussion: """
                Example: spool topic create events --partitions 6 --config retention.ms=86400000 --config compression.type=lz4
                In a cluster: spool topic create orders --partitions 6 --replication-factor 3 --config min.insync.replicas=2
                """)
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Topic name: 1-249 of [a-zA-Z0-9._-].") var name: String
        @Option(help: "Number of partitions (default: the broker's --default-partitions).") var partitions: Int32?
        @Option(help: "Replicas per partition (default: the cluster's default.replication.factor; a single broker keeps 1).")
        var replicationFactor: Int32?
        @Option(name: .customLong("config"), help: "A topic setting as key=value (repeatable).") var configs: [String] = []

        func validate() throws {
            if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1") }
            if let replicationFactor, replicationFactor < 1 { throw ValidationError("--replication-factor must be at least 1") }
        }

        func run() async throws {
            try await address.withConnection { connection in
                let topic = try await SpoolAdmin(connection).createTopic(
                    name, partitions: partitions ?? 0, replicationFactor: replicationFactor ?? 0, configs: try parseConfigs(configs))
                let replicas = topic.replicationFactor > 1 ? ", replication factor \(topic.replicationFactor)" : ""
                print("created topic \(topic.name) with \(topic.partitions.count) partition\(topic.partitions.count == 1 ? "" : "s")\(replicas)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.")
        @OptionGroup var address: BrokerAddress

        func run() async throws {
            try await address.withConnection { connection in
                for topic in try await SpoolAdmin(connection).listTopics() {
                    print("\(topic.name)\t\(topic.partitions)")
                }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's partitions (offsets, size on disk) and settings.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Topic name.") var name: String

        func run() async throws {
            try await address.withConnection { connection in
                let topic = try await SpoolAdmin(connection).describeTopic(name)
                let clustered = topic.partitions.contains { $0.clustered }
                print("topic \(topic.name)  partitions \(topic.partitions.count)\(clustered ? "  replication factor \(topic.replicationFactor)" : "")")
                print("partition\tstart\tend\tsize_bytes\tsegments" + (clustered ? "\tleader\tepoch\treplicas\tisr" : ""))
                func nodes(_ ids: [Int32]) -> String { ids.isEmpty ? "-" : ids.map(String.init).joined(separator: ",") }
                for p in topic.partitions {
                    let replication = clustered ? "\t\(p.leader < 0 ? "none" : String(p.leader))\t\(p.leaderEpoch)\t\(nodes(p.replicas))\t\(nodes(p.isr))" : ""
                    print("\(p.partition)\t\(p.logStartOffset)\t\(p.logEndOffset)\t\(p.sizeBytes)\t\(p.segments)\(replication)\(p.stopped ? "\tSTOPPED: \(p.failure)" : "")")
                }
                let overridden = Set(topic.overrides.map(\.key))
                print("configs:")
                for c in topic.configs {
                    print("  \(c.key)=\(c.value)\(overridden.contains(c.key) ? "" : "  (default)")")
                }
            }
        }
    }

    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change topic settings, or add partitions.",
            discussion: """
                Examples:
                  spool topic alter events --config retention.bytes=1073741824
                  spool topic alter events --partitions 6      grow to 6 partitions (never fewer)
                Keyed records produced after adding partitions may land in another partition than before.
                """)
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Topic name.") var name: String
        @Option(name: .customLong("config"), help: "A topic setting as key=value (repeatable).") var configs: [String] = []
        @Option(help: "The new total number of partitions (more than now).") var partitions: Int32?

        func validate() throws {
            guard !configs.isEmpty || partitions != nil else { throw ValidationError("give --partitions N or at least one --config key=value") }
            if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1") }
        }

        func run() async throws {
            try await address.withConnection { connection in
                let admin = SpoolAdmin(connection)
                if let partitions {
                    let before = try await admin.describeTopic(name).partitions.count
                    guard partitions > before else {
                        throw CLIError("topic \(name) has \(before) partition\(before == 1 ? "" : "s"); --partitions must be more than that (partitions are never removed)")
                    }
                    let topic = try await admin.createPartitions(name, totalCount: partitions)
                    print("topic \(name) now has \(topic.partitions.count) partitions (was \(before))")
                }
                if !configs.isEmpty {
                    try await admin.alterTopic(name, set: try parseConfigs(configs))
                    print("updated topic \(name)")
                }
            }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring a topic's stopped partitions back without a restart.",
            discussion: """
                A partition stops when a write or fsync fails (its data state is then unknown).
                After a failed write it recovers by itself at its next append; after a failed
                fsync it stays stopped until this command (or a restart) re-opens it and
                re-checks it as after an unclean stop.
                """)
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Topic name.") var name: String

        func run() async throws {
            try await address.withConnection { connection in
                let (recovered, _) = try await SpoolAdmin(connection).recoverTopic(name)
                if recovered.isEmpty {
                    print("topic \(name): no partition was stopped")
                } else {
                    print("topic \(name): recovered partitions \(recovered.map(String.init).joined(separator: ", "))")
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its data.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Topic name.") var name: String

        func run() async throws {
            try await address.withConnection { connection in
                try await SpoolAdmin(connection).deleteTopic(name)
                print("deleted topic \(name)")
            }
        }
    }
}

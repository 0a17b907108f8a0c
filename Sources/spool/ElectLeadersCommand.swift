import ArgumentParser
import SpoolBroker
import SpoolCluster
import SpoolCoordination
import SpoolRecords

/// `spool cluster elect-leaders [--topic T [--partition P]] [--type preferred|unclean]`: Kafka's
/// ElectLeaders from the command line, by compare-and-swap on etcd (`ClusterOperations`).
struct ElectLeadersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elect-leaders",
        abstract: "Give leadership to preferred replicas (or elect an unclean leader for partitions without one).",
        discussion: """
            Example:
              spool cluster elect-leaders --etcd http://127.0.0.1:2379 --cluster-id c1 --topic orders --partition 0
            Without --topic: every partition (those already led by their preferred replica are not listed).
            One line per partition: "elected" or Kafka's error (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, …).
            Exits 1 if any partition failed for another reason than ELECTION_NOT_NEEDED.
            """
    )

    enum ElectionKind: String, ExpressibleByArgument { case preferred, unclean }

    @OptionGroup var cluster: EtcdAddress
    @Option(help: "Only this topic's partitions.") var topic: String?
    @Option(help: "Only this partition of --topic.") var partition: Int32?
    @Option(help: "preferred (default) or unclean.") var type: ElectionKind = .preferred

    func validate() throws {
        if partition != nil && topic == nil { throw ValidationError("--partition needs --topic") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
    }

    func run() async throws {
        let client = try cluster.client()
        defer { client.shutdown() }
        let operations = ClusterOperations(client: client, keys: try ClusterKeys(clusterId: cluster.clusterId))
        var partitions: [TopicPartition]?
        if let topic {
            if let partition {
                partitions = [TopicPartition(topic, partition)]
            } else {
                guard let count = try await operations.partitionCount(topic) else { throw CLIError("topic \(topic) does not exist") }
                partitions = (0..<count).map { TopicPartition(topic, $0) }
            }
        }
        let outcomes = await operations.electLeaders(type == .unclean ? .unclean : .preferred, partitions: partitions)
        print(OutcomeText.lines(outcomes, success: "elected"))
        if outcomes.contains(where: { $0.failure != nil && $0.failure != .electionNotNeeded }) { throw ExitCode(1) }
    }
}

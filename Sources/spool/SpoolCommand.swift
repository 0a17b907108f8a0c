import ArgumentParser
import SpoolBroker

/// The `spool` command line: the broker and the tools that talk to it.
@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: a compressed, networked, partitioned commit log.",
        discussion: """
            Examples:
              spool broker                           run a broker on 127.0.0.1:9292 with data in ./spool-data
              spool topic create events --partitions 3
              seq 10 | spool produce events
              spool consume events --from beginning --exit-at-end
              spool group describe billing
              spool demo                             build, compress and read back record batches
              spool debug dump DATA/t-0/00000000000000000000.log
            """,
        version: Broker.version,
        subcommands: [BrokerCommand.self, TopicCommand.self, ProduceCommand.self, ConsumeCommand.self, GroupCommand.self, QuotaCommand.self, AclCommand.self, ClusterCommand.self, DemoCommand.self, DebugCommand.self]
    )
}

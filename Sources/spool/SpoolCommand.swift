import ArgumentParser

/// The `spool` command line: the broker and the tools that talk to it.
@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: a compressed, networked, partitioned commit log.",
        discussion: """
            Examples:
              spool demo                             build, compress and read back record batches
              spool debug dump DATA/t-0/00000000000000000000.log
            """,
        subcommands: [DemoCommand.self, DebugCommand.self]
    )
}

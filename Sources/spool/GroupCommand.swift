import ArgumentParser
import SpoolClient
import SpoolProtocol

/// `spool group …`: consumer groups' committed offsets.
struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Inspect and reset consumer groups' committed offsets.",
        subcommands: [List.self, Describe.self, Members.self, Reset.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List groups with committed offsets.")
        @OptionGroup var address: BrokerAddress

        func run() async throws {
            try await address.withConnection { connection in
                for group in try await SpoolAdmin(connection).listGroups() { print(group) }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Committed offset, log end and lag per partition.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String

        func run() async throws {
            try await address.withConnection { connection in
                let admin = SpoolAdmin(connection)
                let offsets = try await admin.committedOffsets(group: group)
                guard !offsets.isEmpty else { throw CLIError("group \(group) has no committed offsets") }
                print("topic\tpartition\tcommitted\tlog_end\tlag")
                for o in offsets {
                    let end = try await admin.listOffset(topic: o.topic, partition: o.partition, .latest)
                    print("\(o.topic)\t\(o.partition)\t\(o.offset)\t\(end)\t\(max(0, end - o.offset))")
                }
            }
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A group's state and its members with their partitions.",
            discussion: "Prints 'state STATE generation N protocol NAME', then one line per member: member id, client id, host, partitions.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String

        func run() async throws {
            try await address.withConnection { connection in
                var request = Spool_V1_DescribeGroupsRequest()
                request.groups = [group]
                let response: Spool_V1_DescribeGroupsResponse = try await connection.call(.describeGroups, request)
                guard let g = response.groups.first, g.error == .none else {
                    throw CLIError("group \(group) does not exist")
                }
                print("state \(g.state) generation \(g.generationID) protocol \(g.protocolName.isEmpty ? "-" : g.protocolName)")
                for m in g.members {
                    let owned = (try? ConsumerProtocol.decodeAssignment(Array(m.assignment))) ?? [:]
                    let list = owned.flatMap { t, ps in ps.sorted().map { "\(t)-\($0)" } }.sorted().joined(separator: ",")
                    print("\(m.memberID)\t\(m.clientID)\t\(m.clientHost)\t\(list.isEmpty ? "-" : list)")
                }
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a group's committed offsets for a topic.",
            discussion: "Example: spool group reset billing --topic events --to beginning")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String
        @Option(help: "Topic whose partitions to reset.") var topic: String
        @Option(help: "beginning, end or an OFFSET (applied to every partition).") var to: String

        func validate() throws {
            guard ["beginning", "end"].contains(to) || (Int64(to).map { $0 >= 0 } ?? false) else {
                throw ValidationError("--to must be beginning, end or an offset (got '\(to)')")
            }
        }

        func run() async throws {
            try await address.withConnection { connection in
                let admin = SpoolAdmin(connection)
                var offsets: [(topic: String, partition: Int32, offset: Int64)] = []
                for p in try await admin.describeTopic(topic).partitions {
                    let offset: Int64 = switch to {
                    case "beginning": p.logStartOffset
                    case "end": p.logEndOffset
                    default: Int64(to)!
                    }
                    offsets.append((topic, p.partition, offset))
                }
                try await admin.commit(group: group, offsets: offsets)
                for o in offsets { print("\(o.topic)\t\(o.partition)\t\(o.offset)") }
            }
        }
    }
}

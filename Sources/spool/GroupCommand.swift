import ArgumentParser
import SpoolAdminHTTP
import SpoolClient
import SpoolProtocol

/// `spool group …`: consumer groups' committed offsets.
struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Inspect and reset consumer groups' committed offsets.",
        subcommands: [List.self, Describe.self, Reset.self]
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
        static let configuration = CommandConfiguration(
            abstract: "Committed offset, log end and lag per partition; then state, members and assignment.",
            discussion: "Members come from the admin HTTP listener (--admin; by default 127.0.0.1:9644 when --broker is the default).")
        @OptionGroup var address: BrokerAddress
        @OptionGroup var adminAddress: AdminAddress
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
            try await printMembers()
        }

        /// State, generation and each member's assignment, from the admin API (skipped
        /// quietly when no admin address applies or nothing answers there).
        func printMembers() async throws {
            guard let admin = adminAddress.resolved(brokerIsDefault: address.broker == AdminAddress.defaultBroker) else { return }
            let view: GroupView
            do {
                view = try await AdminHTTPClient(address: admin).get("/v1/groups/\(group)", as: GroupView.self)
            } catch {
                if adminAddress.admin != nil { throw error }
                return
            }
            print("")
            print("state\t\(view.state)\tgeneration\t\(view.generation.map(String.init) ?? "-")\tprotocol\t\(view.protocolName ?? "-")\tmembers\t\(view.members.count)")
            guard !view.members.isEmpty else { return }
            print("member\tclient\thost\tassignment")
            for m in view.members {
                print("\(m.memberId)\t\(m.clientId)\t\(m.clientHost)\t\(m.assignment.map { "\($0.topic)-\($0.partition)" }.joined(separator: ","))")
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

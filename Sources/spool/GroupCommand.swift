import ArgumentParser
import Foundation
import SpoolAdminHTTP
import SpoolClient
import SpoolProtocol

/// `spool group …`: consumer groups' committed offsets.
struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Inspect and reset consumer groups' committed offsets.",
        subcommands: [List.self, Describe.self, Members.self, Reset.self, Coordinator.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List groups with members or committed offsets.",
            discussion: """
                In a cluster each broker coordinates some groups (the leaders of their partitions of
                __consumer_offsets): every live broker is asked and the lists merged. A broker that does
                not answer is named on stderr (its groups are missing) and the exit status is 1.
                """)
        @OptionGroup var address: BrokerAddress

        func run() async throws {
            let listing = try await address.withRouter { router in try await SpoolAdmin(router: router).listAllGroups() }
            for group in listing.groups { print(group) }
            for (node, why) in listing.unanswered.sorted(by: { $0.key < $1.key }) {
                FileHandle.standardError.write(Data("spool: broker \(node) did not answer (its groups are missing): \(why)\n".utf8))
            }
            if !listing.unanswered.isEmpty { throw ExitCode(1) }
        }
    }

    struct Coordinator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which broker coordinates a group.",
            discussion: "Prints 'NODE_ID HOST:PORT' (the native address). A single broker coordinates every group.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String

        func run() async throws {
            let found = try await address.withRouter { router in try await SpoolAdmin(router: router).findCoordinator(group: group) }
            print("\(found.node) \(found.address)")
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Committed offset, log end and lag per partition; then state, members and assignment.",
            discussion: "Members come from the admin HTTP listener (--admin; by default 127.0.0.1:9644 when --broker is the default).")
        @OptionGroup var address: BrokerAddress
        @OptionGroup var adminAddress: AdminAddress
        @OptionGroup var login: AdminLogin
        @Argument(help: "Group id.") var group: String

        func run() async throws {
            try await address.withRouter { router in
                let admin = SpoolAdmin(router: router)
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
                view = try await AdminHTTPClient(address: admin, authorization: try login.authorization())
                    .get("/v1/groups/\(group)", as: GroupView.self)
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

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A group's state and its members with their partitions.",
            discussion: "Prints 'state STATE generation N protocol NAME', then one line per member: member id, client id, host, partitions.")
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String

        func run() async throws {
            try await address.withRouter { router in
                let g = try await SpoolAdmin(router: router).describeGroup(group)
                guard g.error == .none else { throw CLIError("group \(group) does not exist") }
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
            discussion: """
                Exactly one of --to, --to-datetime, --shift-by. Examples:
                  spool group reset billing --topic events --to beginning
                  spool group reset billing --topic events --to-datetime 2026-11-26T09:00:00Z --dry-run
                  spool group reset billing --topic events --partition 2 --shift-by -100
                An offset outside a partition's log is clamped to its start or end (and said so on stderr),
                as Kafka's kafka-consumer-groups does; --strict refuses it instead.
                """)
        @OptionGroup var address: BrokerAddress
        @Argument(help: "Group id.") var group: String
        @Option(help: "Topic whose partitions to reset.") var topic: String
        @Option(help: "Reset only this partition (default: all).") var partition: Int32?
        @Option(help: "beginning, end, an OFFSET or @UNIX_MS.") var to: String?
        @Option(help: "The first offset at or after this time (ISO 8601, e.g. 2026-11-26T09:00:00Z).") var toDatetime: String?
        @Option(parsing: .unconditional, help: "Move each committed offset by N (negative: back).") var shiftBy: Int64?
        @Flag(help: "Print the new offsets without committing them.") var dryRun = false
        @Flag(help: "Refuse offsets outside the log instead of clamping them.") var strict = false

        enum Target { case beginning, end, offset(Int64), timestamp(Int64), shift(Int64) }

        func target() throws -> Target {
            let given = [to != nil, toDatetime != nil, shiftBy != nil].filter { $0 }.count
            guard given == 1 else { throw ValidationError("give exactly one of --to, --to-datetime, --shift-by") }
            if let shiftBy { return .shift(shiftBy) }
            if let toDatetime {
                let parser = ISO8601DateFormatter()
                parser.formatOptions = [.withInternetDateTime]
                let fractional = ISO8601DateFormatter()
                fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                guard let date = parser.date(from: toDatetime) ?? fractional.date(from: toDatetime) else {
                    throw ValidationError("--to-datetime must be ISO 8601 with a zone, e.g. 2026-11-26T09:00:00Z (got '\(toDatetime)')")
                }
                return .timestamp(Int64((date.timeIntervalSince1970 * 1000).rounded()))
            }
            switch to! {
            case "beginning": return .beginning
            case "end": return .end
            case let t where t.hasPrefix("@") && Int64(t.dropFirst()) != nil: return .timestamp(Int64(t.dropFirst())!)
            case let t where (Int64(t) ?? -1) >= 0: return .offset(Int64(t)!)
            default: throw ValidationError("--to must be beginning, end, an offset or @UNIX_MS (got '\(to!)')")
            }
        }

        func validate() throws {
            _ = try target()
            if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
        }

        func run() async throws {
            let target = try target()
            try await address.withRouter { router in
                let admin = SpoolAdmin(router: router)
                let description = try await admin.describeTopic(topic)
                var partitions = description.partitions
                if let partition {
                    partitions = partitions.filter { $0.partition == partition }
                    guard !partitions.isEmpty else { throw CLIError("topic \(topic) has no partition \(partition) (it has \(description.partitions.count))") }
                }
                var current: [Int32: Int64] = [:]
                for o in try await admin.committedOffsets(group: group, topics: [topic]) { current[o.partition] = o.offset }
                var offsets: [(topic: String, partition: Int32, offset: Int64)] = []
                var lines: [String] = ["topic\tpartition\tcurrent\tnew"]
                for p in partitions {
                    let start = p.logStartOffset, end = p.logEndOffset
                    var offset: Int64
                    switch target {
                    case .beginning: offset = start
                    case .end: offset = end
                    case .offset(let o): offset = o
                    case .timestamp(let ts):
                        let found = try await admin.listOffset(topic: topic, partition: p.partition, .timestamp(ts))
                        offset = found >= 0 ? found : end
                    case .shift(let n):
                        guard let c = current[p.partition] else {
                            throw CLIError("\(topic)-\(p.partition) has no committed offset for group \(group) to shift; use --to first")
                        }
                        offset = c + n
                    }
                    if offset < start || offset > end {
                        let range = describeOffsets(start: start, end: end)
                        if strict {
                            throw CLIError("offset \(offset) is outside the log of \(topic)-\(p.partition), which holds offsets \(range); nothing was committed")
                        }
                        let clamped = min(max(offset, start), end)
                        FileHandle.standardError.write(Data("note: \(topic)-\(p.partition): offset \(offset) is outside the log (offsets \(range)); using \(clamped)\n".utf8))
                        offset = clamped
                    }
                    offsets.append((topic, p.partition, offset))
                    lines.append("\(topic)\t\(p.partition)\t\(current[p.partition].map(String.init) ?? "-")\t\(offset)")
                }
                if !dryRun { try await admin.commit(group: group, offsets: offsets) }
                print(lines.joined(separator: "\n"))
                if dryRun { print("dry run: nothing committed") }
            }
        }
    }
}

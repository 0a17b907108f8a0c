import ArgumentParser
import Foundation
import NIOCore
import SpoolClient
import SpoolProtocol

/// `spool consume TOPIC`: print records, kcat style.
struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Print records from a topic.",
        discussion: """
            Examples:
              spool consume events --from beginning --exit-at-end
              spool consume events --partition 0 --from 1200 --count 10 --format '%p:%o %k=%v\\n'
              spool consume events --group billing          resume from the group's committed offsets, and commit
              spool consume events --from @1700000000000    from a timestamp (Unix milliseconds)
            Format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp, \\n, \\t, %% (default '%v\\n').
            """
    )

    @OptionGroup var address: BrokerAddress
    @Argument(help: "Topic to read.") var topic: String
    @Option(help: "Read only this partition (default: all).") var partition: Int32?
    @Option(help: "Where to start: beginning, end, OFFSET or @UNIX_MS. With --group the committed offset wins.") var from = "end"
    @Option(help: "Stop after this many records.") var count: Int?
    @Flag(help: "Stop once every partition's end (as of the last fetch) is reached.") var exitAtEnd = false
    @Option(help: "Consumer group: resume from and commit its offsets.") var group: String?
    @Option(help: "Output format, as in kcat.") var format = "%v\\n"

    enum Start { case beginning, end, offset(Int64), timestamp(Int64) }

    func parseStart() throws -> Start {
        switch from {
        case "beginning": return .beginning
        case "end": return .end
        default:
            if from.hasPrefix("@"), let ms = Int64(from.dropFirst()) { return .timestamp(ms) }
            if let offset = Int64(from), offset >= 0 { return .offset(offset) }
            throw ValidationError("--from must be beginning, end, an offset or @UNIX_MS (got '\(from)')")
        }
    }

    func validate() throws {
        _ = try parseStart()
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
        _ = try RecordFormat(format)
    }

    func run() async throws {
        let start: StartPosition = switch try parseStart() {
        case .beginning: .beginning
        case .end: .end
        case .offset(let o): .offset(o)
        case .timestamp(let t): .timestamp(t)
        }
        let formatter = try RecordFormat(format)
        try await address.withConnection { connection in
            let consumer = SpoolConsumer(connection: connection, group: group, maxWaitMillis: exitAtEnd ? 100 : 500)
            // With --group and no --partition the consumer joins the group, whose members share the partitions.
            if let group, partition == nil {
                try await subscribe(consumer, group: group, from: start)
            } else {
                try await consumer.assign(topic: topic, partitions: partition.map { [$0] },
                                          from: group != nil ? .committed(fallback: start) : start)
            }
            var printed = 0
            var out = [UInt8]()
            loop: while true {
                let records = try await consumer.poll()
                for record in records {
                    formatter.render(record, into: &out)
                    printed += 1
                    if let count, printed >= count {
                        // Commit exactly what was printed.
                        try await consumer.seek(topic: record.topic, partition: record.partition, to: .offset(record.offset + 1))
                        break loop
                    }
                }
                if out.count > 0 {
                    FileHandle.standardOutput.write(Data(out))
                    out.removeAll(keepingCapacity: true)
                }
                if group != nil && !records.isEmpty { try await commitUnlessRebalancing(consumer) }
                if exitAtEnd && consumer.isAtEnd { break }
            }
            FileHandle.standardOutput.write(Data(out))
            if group != nil { try await commitUnlessRebalancing(consumer) }
            await consumer.unsubscribe()
        }
    }

    // MARK: Consumer groups (GroupMembership.swift)

    /// Joins the group; rebalances are reported on standard error.
    private func subscribe(_ consumer: SpoolConsumer, group: String, from start: StartPosition) async throws {
        try await consumer.subscribe(topics: [topic], group: group, from: start) { event in
            guard case .assigned(let partitions, let generation) = event else { return }
            let list = partitions.flatMap { t, ps in ps.sorted().map { "\(t)-\($0)" } }.sorted()
            FileHandle.standardError.write(Data("spool: group \(group) generation \(generation): \(list.isEmpty ? "no partitions" : list.joined(separator: ","))\n".utf8))
        }
    }

    /// A commit refused because the group moved on is not an error: the records go to the partitions' next owners.
    private func commitUnlessRebalancing(_ consumer: SpoolConsumer) async throws {
        do {
            try await consumer.commit()
        } catch let error as GroupMembershipError where error.isRebalance {
        }
    }
}

/// A kcat-style output format, parsed once.
struct RecordFormat {
    enum Piece { case literal([UInt8]), topic, partition, offset, key, value, timestamp }
    let pieces: [Piece]

    init(_ format: String) throws {
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var chars = Array(format.utf8)[...]
        func flush() { if !literal.isEmpty { pieces.append(.literal(literal)); literal.removeAll() } }
        while let c = chars.popFirst() {
            if c == UInt8(ascii: "%") || c == UInt8(ascii: "\\") {
                guard let next = chars.popFirst() else { throw ValidationError("--format ends with a lone '\(Character(UnicodeScalar(c)))'") }
                if c == UInt8(ascii: "\\") {
                    switch next {
                    case UInt8(ascii: "n"): literal.append(0x0A)
                    case UInt8(ascii: "t"): literal.append(0x09)
                    case UInt8(ascii: "\\"): literal.append(UInt8(ascii: "\\"))
                    default: throw ValidationError("--format: unknown escape \\\(Character(UnicodeScalar(next)))")
                    }
                    continue
                }
                let piece: Piece
                switch next {
                case UInt8(ascii: "t"): piece = .topic
                case UInt8(ascii: "p"): piece = .partition
                case UInt8(ascii: "o"): piece = .offset
                case UInt8(ascii: "k"): piece = .key
                case UInt8(ascii: "v"): piece = .value
                case UInt8(ascii: "T"): piece = .timestamp
                case UInt8(ascii: "%"): literal.append(UInt8(ascii: "%")); continue
                default: throw ValidationError("--format: unknown field %\(Character(UnicodeScalar(next))); use %t %p %o %k %v %T")
                }
                flush()
                pieces.append(piece)
            } else {
                literal.append(c)
            }
        }
        flush()
        self.pieces = pieces
    }

    func render(_ r: ConsumerRecord, into out: inout [UInt8]) {
        for piece in pieces {
            switch piece {
            case .literal(let bytes): out += bytes
            case .topic: out += Array(r.topic.utf8)
            case .partition: out += Array(String(r.partition).utf8)
            case .offset: out += Array(String(r.offset).utf8)
            case .timestamp: out += Array(String(r.timestamp).utf8)
            case .key: if let k = r.key { out += k.readableBytesView }
            case .value: if let v = r.value { out += v.readableBytesView }
            }
        }
    }
}

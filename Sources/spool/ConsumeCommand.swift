import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
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
              spool consume events --from -5 --exit-at-end     the last 5 records of each partition
              spool consume events --group billing --count 100 resume from the group's committed offsets; commit what was printed
              spool consume events --from @1700000000000       from a timestamp (Unix milliseconds)
            --from applies to each partition. An offset outside a partition's log follows --offset-reset:
            earliest (its first record), latest (its end; the default, as in Kafka's consumer) or error.
            With --group, records are committed once printed (at least once: a record is never
            committed before it is written to standard output).
            Format: %t topic, %p partition, %o offset, %k key, %v value, %K key length, %S value length
            (-1 when null), %h headers (k=v,k=v), %T timestamp, \\n, \\t, %% (default '%v\\n').
            A null key or value prints as nothing, or as NULL with --print-null.
            """
    )

    @OptionGroup var address: BrokerAddress
    @Argument(help: "Topic to read.") var topic: String
    @Option(help: "Read only this partition (default: all).") var partition: Int32?
    @Option(parsing: .unconditional,
            help: "Where to start in each partition: beginning, end, OFFSET, -N (N before the end), @UNIX_MS, or stored (the group's committed offset). Default: end, or stored with --group.")
    var from: String?
    @Option(help: "When a partition has no record at the start offset: earliest, latest or error.") var offsetReset = "latest"
    @Option(help: "Stop after this many records.") var count: Int?
    @Flag(help: "Stop once every partition's end (as of the last fetch) is reached.") var exitAtEnd = false
    @Option(help: "Consumer group: resume from and commit its offsets.") var group: String?
    @Option(help: "read_uncommitted (every record) or read_committed (only committed transactions' records, up to the last stable offset), as Kafka's isolation.level.")
    var isolation = "read_uncommitted"
    @Option(help: "With --group: the member is dropped after this long without a heartbeat (Kafka's session.timeout.ms; the broker allows group.min.session.timeout.ms to group.max.session.timeout.ms).")
    var sessionTimeoutMs: UInt32 = GroupMembership.Config().sessionTimeoutMillis
    @Option(help: "Output format, as in kcat.") var format = "%v\\n"
    @Flag(help: "Print a null key or value as NULL (an empty one prints as nothing).") var printNull = false

    func parseStart() throws -> StartPosition {
        let from = self.from ?? (group != nil ? "stored" : "end")
        let reset = try parseReset()
        let fallback: StartPosition = reset == .earliest ? .beginning : .end
        switch from {
        case "beginning": return .beginning
        case "end": return .end
        case "stored":
            guard group != nil else { throw ValidationError("--from stored needs --group") }
            return .committed(fallback: fallback)
        default:
            if from.hasPrefix("@"), let ms = Int64(from.dropFirst()) { return .timestamp(ms) }
            if from.hasPrefix("-"), let n = Int64(from.dropFirst()), n >= 0 { return .fromEnd(n) }
            if let offset = Int64(from), offset >= 0 { return .offset(offset) }
            throw ValidationError("--from must be beginning, end, stored, an OFFSET, -N or @UNIX_MS (got '\(from)')")
        }
    }

    func parseReset() throws -> OffsetReset {
        guard let reset = OffsetReset(rawValue: offsetReset) else {
            throw ValidationError("--offset-reset must be earliest, latest or error (got '\(offsetReset)')")
        }
        return reset
    }

    func validate() throws {
        _ = try parseStart()
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
        guard isolation == "read_uncommitted" || isolation == "read_committed" else {
            throw ValidationError("--isolation must be read_uncommitted or read_committed (got '\(isolation)')")
        }
        if sessionTimeoutMs < 1 { throw ValidationError("--session-timeout-ms must be at least 1") }
        _ = try RecordFormat(format, printNull: printNull)
    }

    func run() async throws {
        let start = try parseStart()
        let formatter = try RecordFormat(format, printNull: printNull)
        var config = ConsumerConfig(group: group)
        config.maxWaitMillis = exitAtEnd ? 100 : 500
        config.autoOffsetReset = try parseReset()
        config.readCommitted = isolation == "read_committed"
        // The command commits itself, right after the records are written to stdout.
        config.enableAutoCommit = false
        config.maxPollRecords = 10_000
        let outage = NIOLockedValueBox(false)
        config.onRetry = { error in
            let first = outage.withLockedValue { was in defer { was = true }; return !was }
            if first { FileHandle.standardError.write(Data("spool: \(error); retrying\n".utf8)) }
        }
        do {
            try await consume(config: config, start: start, formatter: formatter, outage: outage)
        } catch where Self.leaving.withLockedValue({ $0 }) {
            // A signal is leaving the group: the poll fails once the consumer unsubscribed, and
            // the signal's handler exits with 128 + the signal (at most 2 s from now).
            try? await Task.sleep(for: .seconds(5))
            throw error
        }
    }

    /// Set once SIGINT or SIGTERM starts leaving the group.
    static let leaving = NIOLockedValueBox(false)

    private func consume(config: ConsumerConfig, start: StartPosition, formatter: RecordFormat,
                         outage: NIOLockedValueBox<Bool>) async throws {
        try await address.withRouter { router in
            let consumer = SpoolConsumer(router: router, config: config)
            // With --group and no --partition the consumer joins the group, whose members share the partitions.
            if let group, partition == nil {
                try await subscribe(consumer, group: group, from: start)
            } else {
                try await consumer.assign(topic: topic, partitions: partition.map { [$0] }, from: start)
            }
            var printed = 0
            var out = [UInt8]()
            let stdout = FileHandle.standardOutput
            while true {
                let records = try await consumer.poll(maxRecords: count.map { $0 - printed })
                if !records.isEmpty {
                    if outage.withLockedValue({ $0 }) {
                        outage.withLockedValue { $0 = false }
                        FileHandle.standardError.write(Data("spool: reconnected\n".utf8))
                    }
                    for record in records { formatter.render(record, into: &out) }
                    printed += records.count
                    stdout.write(Data(out))
                    out.removeAll(keepingCapacity: true)
                    // Commit exactly what was printed (poll delivered no more than that).
                    if group != nil { try await commitRiding(consumer) }
                }
                if let count, printed >= count { break }
                if exitAtEnd && consumer.isAtEnd { break }
            }
            if group != nil { try await commitRiding(consumer) }
            await consumer.unsubscribe()
        }
    }

    // MARK: Consumer groups (GroupMembership.swift)

    /// Joins the group; rebalances are reported on standard error.
    private func subscribe(_ consumer: SpoolConsumer, group: String, from start: StartPosition) async throws {
        var membership = GroupMembership.Config()
        membership.sessionTimeoutMillis = sessionTimeoutMs
        // Heartbeats well inside the session, as Kafka's default ratio (3 s of 10 s) but never above 3 s.
        membership.heartbeatIntervalMillis = min(membership.heartbeatIntervalMillis, max(100, sessionTimeoutMs / 3))
        try await consumer.subscribe(topics: [topic], group: group, from: start, config: membership) { event in
            guard case .assigned(let partitions, let generation) = event else { return }
            let list = partitions.flatMap { t, ps in ps.sorted().map { "\(t)-\($0)" } }.sorted()
            FileHandle.standardError.write(Data("spool: group \(group) generation \(generation): \(list.isEmpty ? "no partitions" : list.joined(separator: ","))\n".utf8))
        }
        leaveGroupOnSignals(consumer)
    }

    /// SIGINT or SIGTERM while in a group: leave it before exiting (waiting at most 2 s), so
    /// that the other members take the partitions over at once, not after the session timeout.
    /// The exit does not wait for the leave: a leave that hangs (a broker gone quiet) must
    /// not keep the process alive.
    private func leaveGroupOnSignals(_ consumer: SpoolConsumer) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                Self.leaving.withLockedValue { $0 = true }
                Task {
                    await consumer.unsubscribe()
                    Glibc.exit(128 + sig)
                }
                DispatchQueue.global().asyncAfter(deadline: .now() + 2) { Glibc.exit(128 + sig) }
            }
            source.resume()
            SignalSources.keep(source)
        }
    }

    /// Commits, riding out a broker restart (the next commit carries the same positions) and
    /// a rebalance (the records go to the partitions' next owners, at least once).
    private func commitRiding(_ consumer: SpoolConsumer) async throws {
        do {
            try await consumer.commit()
        } catch let error as GroupMembershipError where error.isRebalance {
            return
        } catch where isRetriable(error) {
            consumer.config.onRetry?(error)
        }
    }
}

import ArgumentParser
import Foundation
import Histogram
import NIOConcurrencyHelpers
import SpoolClient

/// `spool-perf`: load generation for Spool, in the spirit of kafka-producer-perf-test.
@main
struct SpoolPerf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool-perf",
        abstract: "Load generator for Spool: produce, consume, end-to-end latency, and the codecs compared.",
        discussion: """
            Examples:
              spool-perf produce --topic perf --records 1000000 --record-size 100 --compression lz4
              spool-perf consume --topic perf --records 1000000
              spool-perf e2e --topic lat --records 100000 --throughput 100000
              spool-perf sendfile-baseline spool-data/perf-0/*.log
              spool-perf codecs --record-size 100
            A progress line goes to stderr every second; with --json the last stdout line is one JSON object.
            """,
        subcommands: [Produce.self, Consume.self, EndToEnd.self, Commits.self, SendfileBaseline.self, Codecs.self]
    )
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Broker address as HOST:PORT.") var broker = "127.0.0.1:9292"
    @Option(help: "Topic (created if missing).") var topic: String
    @Option(help: "Total records.") var records: Int
    @Flag(help: "Print a JSON summary as the last line of stdout.") var json = false
    @Option(help: "TLS to the broker, trusting this PEM CA.") var tlsCa: String?
    @Option(help: "PEM client certificate for mutual TLS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Authenticate with SCRAM as this user (password: first line of standard input).") var saslUser: String?
    @Option(help: "SCRAM-SHA-256 or SCRAM-SHA-512. Default: SCRAM-SHA-512.") var saslMechanism = "SCRAM-SHA-512"
    @Flag(help: "Read the --sasl-user password from standard input (the default when --sasl-user is given).") var passwordStdin = false

    /// The password, read once.
    nonisolated(unsafe) private static var password: String?
    private static let passwordLock = NSLock()

    func validate() throws {
        guard records > 0 else { throw ValidationError("--records must be at least 1") }
        _ = try address()
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func address() throws -> (String, Int) {
        guard let colon = broker.lastIndex(of: ":"), let port = Int(broker[broker.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("--broker must be HOST:PORT (got '\(broker)')")
        }
        return (String(broker[..<colon]), port)
    }

    func connect() async throws -> SpoolConnection {
        let (host, port) = try address()
        var config = ConnectionConfig(host: host, port: port)
        if let tlsCa { config.tls = ClientTLSConfig(caPath: tlsCa, certificatePath: tlsCert, keyPath: tlsKey) }
        if let saslUser {
            let password = try Self.passwordLock.withLock { () throws -> String in
                if let known = Self.password { return known }
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("--sasl-user needs the password on the first line of standard input")
                }
                Self.password = line
                return line
            }
            config.sasl = ClientSaslConfig(user: saslUser, password: password, mechanism: saslMechanism)
        }
        return try await SpoolConnection.connect(config)
    }

    /// Creates the topic if missing (with `partitions` partitions) and returns its partition ids.
    func prepareTopic(partitions: Int32) async throws -> [Int32] {
        let connection = try await connect()
        do {
            try await ensureTopic(connection, partitions: partitions)
            let ids = try await SpoolAdmin(connection).describeTopic(topic).partitions.map(\.partition)
            await connection.close()
            return ids
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Creates the topic with `partitions` partitions unless it exists.
    func ensureTopic(_ connection: SpoolConnection, partitions: Int32) async throws {
        let admin = SpoolAdmin(connection)
        if try await admin.listTopics().contains(where: { $0.name == topic }) { return }
        do {
            try await admin.createTopic(topic, partitions: partitions)
        } catch let error as SpoolStatusError where error.code == .alreadyExists {}
    }
}

/// Counts and latencies shared by the tasks of one run, reported every second.
final class Stats: Sendable {
    struct State {
        var records = 0
        var bytes = 0
        var errors = 0
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three) // µs
        var windowRecords = 0
        var windowBytes = 0
        var windowLatencySum: UInt64 = 0
        var windowLatencyMax: UInt64 = 0
        var windowCount = 0
    }

    let state = NIOLockedValueBox(State())
    let start = ContinuousClock.now
    let label: String

    init(label: String) { self.label = label }

    func record(bytes: Int, latencyMicros: UInt64?) {
        state.withLockedValue { s in
            s.records += 1
            s.bytes += bytes
            s.windowRecords += 1
            s.windowBytes += bytes
            if let l = latencyMicros {
                _ = s.histogram.record(min(l, 60_000_000))
                s.windowLatencySum += l
                s.windowLatencyMax = max(s.windowLatencyMax, l)
                s.windowCount += 1
            }
        }
    }

    func recordMany(records: Int, bytes: Int) {
        state.withLockedValue { s in
            s.records += records
            s.bytes += bytes
            s.windowRecords += records
            s.windowBytes += bytes
        }
    }

    /// Records a batch of `records` whose per-record latencies lie between the two
    /// bounds (its records were queued between the batch's opening and closing):
    /// eight evenly spaced values share the count.
    func recordBatch(records: Int, bytes: Int, latencyMicrosMin: UInt64, latencyMicrosMax: UInt64) {
        guard records > 0 else { return }
        let points = min(records, 8)
        state.withLockedValue { s in
            s.records += records
            s.bytes += bytes
            s.windowRecords += records
            s.windowBytes += bytes
            let span = latencyMicrosMax &- latencyMicrosMin
            for k in 0..<points {
                let l = latencyMicrosMin + (points > 1 ? span * UInt64(k) / UInt64(points - 1) : 0)
                let n = records / points + (k < records % points ? 1 : 0)
                _ = s.histogram.record(min(l, 60_000_000), count: UInt64(n))
                s.windowLatencySum += l * UInt64(n)
                s.windowLatencyMax = max(s.windowLatencyMax, l)
                s.windowCount += n
            }
        }
    }

    func error() { state.withLockedValue { $0.errors += 1 } }

    func errors(_ n: Int) { state.withLockedValue { $0.errors += n } }

    var records: Int { state.withLockedValue { $0.records } }

    /// Prints one progress line to stderr and starts a new window.
    func progress(windowSeconds: Double) {
        let line = state.withLockedValue { s -> String in
            defer {
                s.windowRecords = 0
                s.windowBytes = 0
                s.windowLatencySum = 0
                s.windowLatencyMax = 0
                s.windowCount = 0
            }
            let rate = Double(s.windowRecords) / windowSeconds
            let mb = Double(s.windowBytes) / windowSeconds / 1_048_576
            let avg = s.windowCount > 0 ? Double(s.windowLatencySum) / Double(s.windowCount) / 1000 : 0
            return String(format: "%d records %@, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency",
                          s.windowRecords, label, rate, mb, avg, Double(s.windowLatencyMax) / 1000)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// The final summary line, and the JSON object when asked.
    func summary(json: Bool) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let s = state.withLockedValue { $0 }
        let h = s.histogram
        let ms = { (v: UInt64) in Double(v) / 1000 }
        let rate = Double(s.records) / seconds
        let mb = Double(s.bytes) / seconds / 1_048_576
        print(String(format: "%d records %@, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.",
                     s.records, label, rate, mb, h.totalCount > 0 ? h.mean / 1000 : 0, ms(h.max),
                     ms(h.valueAtPercentile(50)), ms(h.valueAtPercentile(95)), ms(h.valueAtPercentile(99)), ms(h.valueAtPercentile(99.9))))
        if s.errors > 0 { print("\(s.errors) errors") }
        if json {
            let latency = String(format: "{\"avg\":%.3f,\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,\"max\":%.3f}",
                                 h.totalCount > 0 ? h.mean / 1000 : 0, ms(h.valueAtPercentile(50)), ms(h.valueAtPercentile(95)),
                                 ms(h.valueAtPercentile(99)), ms(h.valueAtPercentile(99.9)), ms(h.max))
            print(String(format: "{\"records\":%d,\"bytes\":%d,\"seconds\":%.3f,\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"errors\":%d,\"latency_ms\":%@}",
                         s.records, s.bytes, seconds, rate, mb, s.errors, latency))
        }
        fflush(nil)
    }
}

/// Reports progress every second until cancelled.
func progressLoop(_ stats: Stats) -> Task<Void, Never> {
    Task {
        var last = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if Task.isCancelled { break }
            let now = ContinuousClock.now
            let d = now - last
            stats.progress(windowSeconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            last = now
        }
    }
}

/// Payload generator: JSON-like event lines (compressible, like real events) or random bytes.
struct Payloads {
    let values: [[UInt8]]

    /// `seed` makes the values the same on every run (`spool-perf codecs`); without it they are random.
    init(kind: String, size: Int, count: Int = 1024, seed: UInt64? = nil) {
        var rng = PayloadRandom(seed: seed ?? UInt64.random(in: 0...UInt64.max))
        values = (0..<count).map { i in
            if kind == "random" {
                return (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            let actions = ["view", "click", "add_to_cart", "purchase", "search"]
            var line = "{\"ts\":\(1_700_000_000_000 + i * 37),\"user\":\"user-\(i * 7919 % 10007)\",\"action\":\"\(actions[i % 5])\",\"item\":\(i * 31 % 5003),\"pad\":\""
            let room = size - line.utf8.count - 2
            if room > 0 {
                let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
                line += String(decoding: (0..<room).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }, as: UTF8.self)
            }
            line += "\"}"
            var bytes = Array(line.utf8)
            if bytes.count > size { bytes = Array(bytes.prefix(size)) }
            return bytes
        }
    }
}

/// SplitMix64: payloads from a seed, identical on every machine.
struct PayloadRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Paces a loop to `perSecond` iterations (unlimited when ≤ 0).
struct Throttle {
    let perSecond: Double
    let start = ContinuousClock.now

    /// Whether `wait` ever waits; loops check it first, because even an `await` that
    /// returns at once costs a task-frame allocation per record.
    var isLimited: Bool { perSecond > 0 }

    func wait(done: Int) async {
        guard perSecond > 0 else { return }
        let due = start + .nanoseconds(Int64(Double(done) / perSecond * 1e9))
        if due > ContinuousClock.now + .milliseconds(1) { try? await Task.sleep(until: due) }
    }
}

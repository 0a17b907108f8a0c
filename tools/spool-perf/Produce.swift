import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import SpoolClient

/// `spool-perf produce`: send N records as fast as allowed, measure acknowledgement latency.
struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce records and report throughput and latency.",
        discussion: """
            --api picks the producer API: 'batch' (default) queues raw bytes with trySend through a topic handle and
            learns outcomes once per batch (latency per record is estimated from its batch's open and close times);
            'callback' passes a closure per record; 'async' awaits every record from --concurrency tasks.
            The first record that fails for good (after retries, within --delivery-timeout-ms) stops the sending:
            the records already queued get their outcome, then the run exits non-zero saying how many were
            acknowledged. --keep-going sends every record anyway.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Bytes per record value.") var recordSize = 100
    @Option(help: "Payload: json (event-like, compressible) or random.") var payload = "json"
    @Option(help: "Concurrent producers, each with its own connection.") var producers = 1
    @Option(help: "Partitions of the topic if it is created.") var partitions: Int32 = 1
    @Option(help: "Records per second over all producers (-1: unlimited).") var throughput = -1
    @Option(help: "Codec: none, gzip, snappy, lz4 or zstd.") var compression = "lz4"
    @Option(help: "Acknowledgement: 0, 1 or all.") var acks = "1"
    @Option(help: "Batch size in bytes.") var batchBytes = 256 * 1024
    @Option(help: "Linger in milliseconds.") var lingerMs = 5
    @Option(help: "Producer API: batch, callback or async.") var api = "batch"
    @Option(help: "Tasks per producer awaiting sends (--api async).") var concurrency = 256
    @Option(help: "A record not acknowledged this long after it was queued fails (retries included).") var deliveryTimeoutMs = 120_000
    @Flag(help: "Go on sending after a record failed for good (default: stop at the first failure).") var keepGoing = false
    @Flag(inversion: .prefixedNo, help: "Idempotent producer (producer id, epoch and sequences in every batch); on by default, as the library.") var idempotent = true

    func validate() throws {
        guard recordSize >= 1 && recordSize <= 1 << 20 else { throw ValidationError("--record-size must be 1...1048576") }
        guard ["json", "random"].contains(payload) else { throw ValidationError("--payload must be json or random") }
        guard producers >= 1 && producers <= 256 else { throw ValidationError("--producers must be 1...256") }
        guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1") }
        guard CompressionType(name: compression) != nil else { throw ValidationError("--compression must be one of \(CompressionType.supported.map(\.name).joined(separator: ", "))") }
        guard ProducerAcks(name: acks) != nil else { throw ValidationError("--acks must be 0, 1 or all") }
        guard batchBytes >= 1024 && batchBytes <= 8 << 20 else { throw ValidationError("--batch-bytes must be 1024...8388608") }
        guard ["batch", "callback", "async"].contains(api) else { throw ValidationError("--api must be batch, callback or async") }
        guard concurrency >= 1 && concurrency <= 10_000 else { throw ValidationError("--concurrency must be 1...10000") }
        guard deliveryTimeoutMs >= 100 && deliveryTimeoutMs <= 86_400_000 else { throw ValidationError("--delivery-timeout-ms must be 100...86400000") }
    }

    func run() async throws {
        _ = try await common.prepareTopic(partitions: partitions)
        let payloads = Payloads(kind: payload, size: recordSize)
        let stats = Stats(label: "sent")
        let reporter = progressLoop(stats)
        var config = ProducerConfig()
        config.compression = CompressionType(name: compression)!
        config.acks = ProducerAcks(name: acks)!
        config.batchBytes = batchBytes
        config.lingerMillis = lingerMs
        config.maxInFlightRequests = 16
        config.bufferBytes = 64 << 20
        config.maxRequestBytes = max(config.maxRequestBytes, 2 * batchBytes + 4096)
        config.idempotent = idempotent
        config.deliveryTimeoutMillis = deliveryTimeoutMs
        let producerConfig = config
        // Set by the first record that fails for good; the senders stop unless --keep-going.
        let firstFailure = FirstFailure(stopsSending: !keepGoing)
        let topic = common.topic
        let total = common.records
        let producerCount = producers
        let rate = Double(throughput) / Double(producers)
        let api = self.api
        let concurrency = self.concurrency
        let recordSize = self.recordSize
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<producerCount {
                let share = total / producerCount + (index < total % producerCount ? 1 : 0)
                group.addTask {
                    let connection = try await common.connect()
                    let throttle = Throttle(perSecond: rate)
                    let value: @Sendable (Int) -> [UInt8] = { i in payloads.values[(i &* 7 &+ index) % payloads.values.count] }
                    switch api {
                    case "batch":
                        // Outcomes once per batch: no closure, lock or clock read per record.
                        let producer = SpoolProducer(connection: connection, config: producerConfig) { report in
                            if let error = report.error {
                                firstFailure.note(error)
                                stats.errors(report.recordCount)
                                return
                            }
                            let now = ContinuousClock.now
                            stats.recordBatch(
                                records: report.recordCount, bytes: report.recordCount * recordSize,
                                latencyMicrosMin: micros(now - report.closedAt), latencyMicrosMax: micros(now - report.openedAt))
                        }
                        let handle = try await producer.topic(topic)
                        sending: for i in 0..<share {
                            if firstFailure.stop { break }
                            if throttle.isLimited { await throttle.wait(done: i) }
                            while try !value(i).withUnsafeBytes({ try producer.trySend(handle, value: $0) }) {
                                if firstFailure.stop { break sending }
                                await producer.waitForRoom()
                            }
                        }
                        try await producer.flush()
                    case "callback":
                        let producer = SpoolProducer(connection: connection, config: producerConfig)
                        for i in 0..<share {
                            if firstFailure.stop { break }
                            await throttle.wait(done: i)
                            let v = value(i)
                            let sent = ContinuousClock.now
                            try await producer.send(topic: topic, value: v) { result in
                                switch result {
                                case .success: stats.record(bytes: v.count, latencyMicros: micros(ContinuousClock.now - sent))
                                case .failure(let error):
                                    firstFailure.note(error)
                                    stats.error()
                                }
                            }
                        }
                        try await producer.flush()
                    default:
                        let producer = SpoolProducer(connection: connection, config: producerConfig)
                        try await withThrowingTaskGroup(of: Void.self) { senders in
                            for lane in 0..<concurrency {
                                senders.addTask {
                                    for i in stride(from: lane, to: share, by: concurrency) {
                                        if firstFailure.stop { break }
                                        await throttle.wait(done: i)
                                        let v = value(i)
                                        let sent = ContinuousClock.now
                                        do {
                                            _ = try await producer.send(topic: topic, value: v)
                                            stats.record(bytes: v.count, latencyMicros: micros(ContinuousClock.now - sent))
                                        } catch {
                                            firstFailure.note(error)
                                            stats.error()
                                        }
                                    }
                                }
                            }
                            try await senders.waitForAll()
                        }
                        try await producer.flush()
                    }
                    await connection.close()
                }
            }
            try await group.waitForAll()
        }
        reporter.cancel()
        stats.summary(json: common.json)
        let (acknowledged, errors) = stats.state.withLockedValue { ($0.records, $0.errors) }
        if errors > 0 {
            let how = keepGoing ? "" : "; stopped sending at the first failure (--keep-going sends every record)"
            FileHandle.standardError.write(Data(
                "spool-perf: \(acknowledged) records acknowledged, \(errors) failed\(how); first failure: \(firstFailure.first ?? "?")\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// The first record failure of a run; once set, the senders stop (unless told to keep going).
final class FirstFailure: Sendable {
    let stopsSending: Bool
    private let error = NIOLockedValueBox<String?>(nil)

    init(stopsSending: Bool) { self.stopsSending = stopsSending }

    func note(_ failure: Error) {
        error.withLockedValue { if $0 == nil { $0 = "\(failure)" } }
    }

    var first: String? { error.withLockedValue { $0 } }
    /// The senders should stop now.
    var stop: Bool { stopsSending && first != nil }
}

/// Whole microseconds of a duration.
func micros(_ d: Duration) -> UInt64 {
    UInt64(max(0, d.components.seconds)) * 1_000_000 + UInt64(max(0, d.components.attoseconds) / 1_000_000_000_000)
}

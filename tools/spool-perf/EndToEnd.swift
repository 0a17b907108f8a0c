import ArgumentParser
import Foundation
import SpoolClient

/// `spool-perf e2e`: latency from send to receipt by a consumer, at a fixed rate.
struct EndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Measure end-to-end latency (send → consumer receipt) at a fixed rate.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Records per second.") var throughput: Int
    @Option(help: "Bytes per record value (at least 16).") var recordSize = 100
    @Option(help: "Codec: none, gzip, snappy, lz4 or zstd.") var compression = "lz4"
    @Option(help: "Producer linger in milliseconds.") var lingerMs = 1

    func validate() throws {
        guard throughput >= 1 else { throw ValidationError("--throughput must be at least 1") }
        guard recordSize >= 16 && recordSize <= 1 << 20 else { throw ValidationError("--record-size must be 16...1048576") }
        guard CompressionType(name: compression) != nil else { throw ValidationError("--compression must be one of \(CompressionType.supported.map(\.name).joined(separator: ", "))") }
    }

    func run() async throws {
        let partitions = try await common.prepareTopic(partitions: 1)
        let stats = Stats(label: "received")
        let reporter = progressLoop(stats)
        let topic = common.topic
        let total = common.records
        let origin = ContinuousClock.now
        // Consumer: long-polls from the current end and measures receipt time against the send time in the value.
        let consumerConnection = try await common.connect()
        let consumer = SpoolConsumer(connection: consumerConnection, maxWaitMillis: 100)
        try await consumer.assign(topic: topic, partitions: partitions, from: .end)
        let consuming = Task {
            let deadline = ContinuousClock.now + .seconds(Int64(total / throughput) + 30)
            while stats.records < total && ContinuousClock.now < deadline {
                for r in try await consumer.poll() {
                    guard let v = r.value, let sentNanos = v.getInteger(at: v.readerIndex, as: UInt64.self) else { continue }
                    let now = ContinuousClock.now - origin
                    let nowNanos = UInt64(now.components.seconds) * 1_000_000_000 + UInt64(now.components.attoseconds / 1_000_000_000)
                    stats.record(bytes: v.readableBytes, latencyMicros: (nowNanos &- sentNanos) / 1000)
                }
            }
        }
        var config = ProducerConfig()
        config.compression = CompressionType(name: compression)!
        config.lingerMillis = lingerMs
        config.batchBytes = 64 * 1024
        let producerConnection = try await common.connect()
        let producer = SpoolProducer(connection: producerConnection, config: config)
        let throttle = Throttle(perSecond: Double(throughput))
        var value = [UInt8](repeating: 0x61, count: recordSize)
        for i in 0..<total {
            await throttle.wait(done: i)
            let now = ContinuousClock.now - origin
            let nanos = UInt64(now.components.seconds) * 1_000_000_000 + UInt64(now.components.attoseconds / 1_000_000_000)
            withUnsafeBytes(of: nanos.bigEndian) { for j in 0..<8 { value[j] = $0[j] } }
            try await producer.send(topic: topic, value: value) { result in
                if case .failure = result { stats.error() }
            }
        }
        try await producer.flush()
        try await consuming.value
        reporter.cancel()
        await producerConnection.close()
        await consumerConnection.close()
        stats.summary(json: common.json)
        if stats.records < total { throw CleanExitError("only \(stats.records) of \(total) records arrived") }
    }
}

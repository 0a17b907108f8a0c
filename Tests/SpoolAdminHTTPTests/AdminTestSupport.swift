import Foundation
import Logging
import NIOCore
import NIOPosix
import SpoolAdminHTTP
import SpoolBroker
import SpoolRecords
import SpoolStorage

/// A broker in this process over a temporary directory, with metrics going to a
/// Prometheus exporter of its own (no global state shared between tests).
final class TestBroker: @unchecked Sendable {  // fields are set once in init
    let directory = NSTemporaryDirectory() + "spool-admin-" + UUID().uuidString
    let exporter = PrometheusExporter()
    let broker: Broker
    let api: AdminAPI
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    init(io: FileIO = PosixFileIO(), logger: Logger = Logger(label: "spool.broker"), configure: (inout BrokerConfig) -> Void = { _ in }) throws {
        var config = BrokerConfig(dataDirectory: directory)
        config.ioThreads = 1
        configure(&config)
        broker = try Broker(config: config, io: io, events: BrokerEvents(metrics: BrokerMetrics(factory: exporter), logger: logger))
        api = AdminAPI(broker: broker, listeners: { [ListenerView(name: "native", address: "127.0.0.1:1")] }, ready: { true })
    }

    /// Appends `values` (one batch) to `topic`-`partition`, keyed key-0, key-1, …
    func produce(_ topic: String, partition: Int32 = 0, values: [[UInt8]], headers: [RecordHeader] = []) async throws {
        var builder = RecordBatchBuilder()
        for (i, value) in values.enumerated() {
            builder.append(key: Array("key-\(i)".utf8), value: value, headers: headers, timestamp: 1_700_000_000_000 + Int64(i))
        }
        let result = try await broker.produce(TopicPartition(topic, partition), try builder.build(), acks: .leader, on: loop).get()
        if let error = result.error { throw error }
    }

    /// The metrics page as text, collected as a scrape would.
    func scrape() -> String {
        String(decoding: api.metricsText(exporter), as: UTF8.self)
    }

    /// The value of one series in `text` (exact name with labels), or nil.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    func close() async {
        try? await broker.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

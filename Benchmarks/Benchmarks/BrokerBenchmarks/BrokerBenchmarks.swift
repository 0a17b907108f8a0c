// The cost of metrics on the produce path. Each op is a burst of produce requests through
// the broker core (validate, append on the partition's serial queue, answer), with the
// metric calls the native listener makes per request (calls in flight, request count and
// latency histogram) and the core makes per append (records and bytes in per topic).
// "metrics off" is what `--http-listen none` runs (swift-metrics' no-op handlers);
// "metrics on" records into a Prometheus registry, as the admin listener does.
// The figure that matters is the ratio on/off, measured in the same run, for small
// batches (16 records: the per-request share is largest) and 64 KiB batches.

import Benchmark
import CoreMetrics
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Prometheus
import SpoolBroker
import SpoolRecords
import SpoolStorage

let scratch = NSTemporaryDirectory() + "spool-broker-bench-\(getpid())"
/// Requests in flight per op (a pipelining client).
let requestsPerOp = 64

func batch(records: Int, valueBytes: Int) -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: .lz4)
    var value = [UInt8](repeating: 0x61, count: valueBytes)
    for i in 0..<records {
        value[i % valueBytes] = UInt8(truncatingIfNeeded: i)
        builder.append(key: nil, value: value, timestamp: 1_700_000_000_000 + Int64(i))
    }
    return try! builder.build()
}

func produceBenchmark(_ name: String, recordsPerBatch: Int, metricsOn: Bool) {
    Benchmark(name, configuration: .init(scalingFactor: .one)) { benchmark in
        let dir = scratch + "/" + UUID().uuidString
        var config = BrokerConfig(dataDirectory: dir)
        config.ioThreads = 1
        let factory: any MetricsFactory = metricsOn ? PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()) : NOOPMetricsHandler.instance
        let metrics = BrokerMetrics(factory: factory)
        let broker = try! Broker(config: config, events: BrokerEvents(metrics: metrics))
        _ = try! await broker.createTopic("bench", partitions: 1, configs: ["segment.bytes": "67108864", "retention.bytes": "134217728"])
        let tp = TopicPartition("bench", 0)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let listener = metrics.listener("native")
        let request = metrics.requests(listener: "native", api: "produce")
        let template = batch(records: recordsPerBatch, valueBytes: 100)
        var appended = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let futures = (0..<requestsPerOp).map { _ in
                let start = DispatchTime.now().uptimeNanoseconds
                listener.callsInFlight.increment()
                return broker.produce(tp, template, acks: .leader, on: loop).map { result in
                    listener.callsInFlight.decrement()
                    request.completed(durationNanos: Int64(DispatchTime.now().uptimeNanoseconds - start), errorCode: nil)
                    return result
                }
            }
            let results = try! await EventLoopFuture.whenAllSucceed(futures, on: loop).get()
            precondition(results.allSatisfy { $0.error == nil })
            appended += results.count
            if appended % (requestsPerOp * 64) == 0 { broker.storage.runRetention() }
        }
        benchmark.stopMeasurement()
        try? await broker.close()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Only the metric calls one produce request makes (listener and core), 1000 requests per
/// op: their cost per request in isolation, to set beside the produce path's.
func metricCallsBenchmark(_ name: String, metricsOn: Bool) {
    Benchmark(name, configuration: .init(metrics: [.cpuTotal, .wallClock, .throughput], scalingFactor: .kilo)) { benchmark in
        let factory: any MetricsFactory = metricsOn ? PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()) : NOOPMetricsHandler.instance
        let metrics = BrokerMetrics(factory: factory)
        let listener = metrics.listener("native")
        let request = metrics.requests(listener: "native", api: "produce")
        let topic = "bench-topic-with-a-usual-name"
        for _ in benchmark.scaledIterations {
            let start = DispatchTime.now().uptimeNanoseconds
            listener.callsInFlight.increment()
            metrics.topic(topic).recordsIn(count: 16, bytes: 1_700)
            listener.callsInFlight.decrement()
            request.completed(durationNanos: Int64(DispatchTime.now().uptimeNanoseconds - start), errorCode: nil)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .cpuTotal],
        warmupIterations: 5,
        maxDuration: .seconds(6),
        maxIterations: 100_000
    )
    metricCallsBenchmark("Metric calls per produce request, metrics off", metricsOn: false)
    metricCallsBenchmark("Metric calls per produce request, metrics on", metricsOn: true)
    // Interleaved, so drift on a shared machine hits both variants alike.
    produceBenchmark("Produce 16-record batches, metrics off", recordsPerBatch: 16, metricsOn: false)
    produceBenchmark("Produce 16-record batches, metrics on", recordsPerBatch: 16, metricsOn: true)
    produceBenchmark("Produce 560-record batches, metrics off", recordsPerBatch: 560, metricsOn: false)
    produceBenchmark("Produce 560-record batches, metrics on", recordsPerBatch: 560, metricsOn: true)
}

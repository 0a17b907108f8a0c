import CoreMetrics
import Prometheus
import SpoolBroker

/// The broker's metrics in Prometheus text format.
///
/// A swift-metrics factory over one `PrometheusCollectorRegistry` that takes each
/// metric's help text and histogram buckets from ``BrokerMetrics/catalogue``, so
/// `/metrics` has a `# HELP` line for every family (which `promtool check metrics`
/// asks for) and latency buckets fine enough for a log broker (50 µs up).
///
/// ```swift
/// let exporter = PrometheusExporter()
/// let metrics = BrokerMetrics(factory: exporter)
/// let text = exporter.render()
/// ```
public struct PrometheusExporter: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// The exposition text of every registered metric.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64 << 10)
        registry.emit(into: &buffer)
        return buffer
    }

    static func help(_ label: String) -> String {
        BrokerMetrics.descriptors[label]?.help ?? String(label.map { $0 == "_" ? " " : $0 })
    }

    static func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help(label))
    }

    static func buckets(_ label: String) -> [Double] {
        let buckets = BrokerMetrics.descriptors[label]?.buckets ?? []
        return buckets.isEmpty ? BrokerMetrics.latencyBucketsSeconds : buckets
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: Self.descriptor(label), labels: dimensions, buckets: Self.buckets(label))
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: Self.descriptor(label), labels: dimensions, buckets: Self.buckets(label).map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) })
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as Histogram<Double>: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? Histogram<Duration> { registry.unregisterDurationHistogram(histogram) }
    }
}

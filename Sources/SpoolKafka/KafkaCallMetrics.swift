import Dispatch
import NIOCore
import SpoolBroker

/// One Kafka connection's view of the broker metrics: connections, requests in flight,
/// and per request its API and latency (from read to answer written). Lives on the
/// connection's event loop; handles are looked up once per connection.
struct KafkaCallMetrics {
    static let listener = "kafka"

    private let listener: ListenerMetrics
    private let events: BrokerEvents
    private var client = "?"
    private let byKey: [Int16: RequestMetrics]
    private let unknown: RequestMetrics
    private var started: [UInt64: (metrics: RequestMetrics, api: Int16, nanos: UInt64)] = [:]

    init(events: BrokerEvents) {
        self.events = events
        let metrics = events.metrics
        listener = metrics.listener(Self.listener)
        var byKey: [Int16: RequestMetrics] = [:]
        for key in KafkaApiKey.allCases {
            byKey[key.rawValue] = metrics.requests(listener: Self.listener, api: "\(key)")
        }
        self.byKey = byKey
        unknown = metrics.requests(listener: Self.listener, api: "unknown")
    }

    mutating func connectionOpened(client: String) {
        self.client = client
        listener.connectionOpened()
    }

    mutating func connectionClosed() {
        listener.connectionClosed()
        if !started.isEmpty { listener.callsInFlight.decrement(by: Double(started.count)) }
        started.removeAll()
    }

    /// Request `sequence` was read; its API key is the frame's first two bytes.
    mutating func started(_ sequence: UInt64, _ frame: ByteBuffer) {
        let key = frame.getInteger(at: frame.readerIndex, as: Int16.self) ?? -1
        started[sequence] = (byKey[key] ?? unknown, key, DispatchTime.now().uptimeNanoseconds)
        listener.callsInFlight.increment()
    }

    /// Request `sequence` was answered (`error`: it ended the connection instead).
    mutating func ended(_ sequence: UInt64, error: String? = nil) {
        guard let call = started.removeValue(forKey: sequence) else { return }
        listener.callsInFlight.decrement()
        let nanos = Int64(DispatchTime.now().uptimeNanoseconds - call.nanos)
        call.metrics.completed(durationNanos: nanos, errorCode: error)
        events.request(listener: Self.listener, api: KafkaApiKey(rawValue: call.api).map { "\($0)" } ?? "unknown(\(call.api))",
                       client: client, durationNanos: nanos, error: error)
    }
}

import Dispatch
import SpoolBroker
import SpoolProtocol

/// One native connection's view of the broker metrics: connections, calls in flight,
/// and per call its API, latency and error code. Lives on the connection's event loop;
/// the metric handles are looked up once per connection, never per call.
struct NativeCallMetrics {
    static let listener = "native"

    private let events: BrokerEvents
    /// The peer, for debug logs of requests.
    private var client = "?"
    private let listener: ListenerMetrics
    private let byMethod: [RequestMetrics?]
    private var started: [UInt32: (method: SpoolMethod, nanos: UInt64)] = [:]

    init(events: BrokerEvents) {
        self.events = events
        let metrics = events.metrics
        listener = metrics.listener(Self.listener)
        let maxRaw = Int(SpoolMethod.allCases.map(\.rawValue).max() ?? 0)
        var byMethod = [RequestMetrics?](repeating: nil, count: maxRaw + 1)
        for method in SpoolMethod.allCases {
            byMethod[Int(method.rawValue)] = metrics.requests(listener: Self.listener, api: "\(method)")
        }
        self.byMethod = byMethod
    }

    mutating func connectionOpened(client: String) {
        self.client = client
        listener.connectionOpened()
    }

    /// The connection closed: its calls are no longer in flight.
    mutating func connectionClosed() {
        listener.connectionClosed()
        if !started.isEmpty { listener.callsInFlight.decrement(by: Double(started.count)) }
        started.removeAll()
    }

    mutating func started(_ id: UInt32, _ method: SpoolMethod) {
        started[id] = (method, DispatchTime.now().uptimeNanoseconds)
        listener.callsInFlight.increment()
    }

    /// Call `id` was answered; `error` names its status code when it failed.
    mutating func ended(_ id: UInt32, error: Spool_V1_StatusCode? = nil) {
        guard let call = started.removeValue(forKey: id) else { return }
        listener.callsInFlight.decrement()
        let nanos = Int64(DispatchTime.now().uptimeNanoseconds - call.nanos)
        byMethod[Int(call.method.rawValue)]?.completed(durationNanos: nanos, errorCode: error?.name)
        events.request(listener: Self.listener, api: "\(call.method)", client: client, durationNanos: nanos, error: error?.name)
    }
}

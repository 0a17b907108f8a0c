import CoreMetrics
import NIOConcurrencyHelpers
import SpoolRecords
import SpoolStorage

/// Kafka's client quotas: produce and fetch byte rates per user and client id. Each
/// answered Produce and Fetch records its bytes against the quota that applies to its
/// (user, client id) and gets a throttle time; the listener delays the answer by it and
/// reports it in `throttle_time_ms`, so a client over its rate is slowed to it.
///
/// Which quota applies is Kafka's precedence, the first entity with a value for the kind:
/// (user, client), (user, default client), (user), (default user, client), (default user,
/// default client), (default user), (client), (default client). A default applies to
/// each user or client on its own: the rate is tracked per actual name.
///
/// Throttle time is Kafka's: `(rate − quota) / quota × window` over the sampled window,
/// capped at the whole window (`samples × windowMillis`).
public final class ClientQuotaManager: Sendable {
    /// Produce (records' bytes in) or fetch (response bytes out).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case produce
        case fetch
    }

    /// Limits and timings (Kafka's defaults).
    public struct Config: Sendable {
        /// Kafka's `quota.window.num`.
        public var samples = 11
        /// Kafka's `quota.window.size.seconds`, in milliseconds.
        public var windowMillis: Int64 = 1000
        /// Most sensors kept; idle ones beyond it are dropped first.
        public var maxSensors = 100_000
        /// A sensor not recorded for this long is dropped.
        public var sensorIdleMillis: Int64 = 3_600_000
        public init() {}
    }

    /// The principal name of a client that did not authenticate (Kafka's `ANONYMOUS`).
    public static let anonymousUser = "ANONYMOUS"

    struct SensorKey: Hashable {
        var kind: Kind
        var user: String?
        var clientId: String?
    }

    public let config: Config
    let store: ClientQuotaStore
    private let sensors = NIOLockedValueBox<[SensorKey: ByteRateSampler]>([:])
    private let throttledSeconds: [Kind: FloatingPointCounter]
    private let throttledResponses: [Kind: Counter]

    init(store: ClientQuotaStore, config: Config = Config(), factory: any MetricsFactory) {
        self.store = store
        self.config = config
        var seconds: [Kind: FloatingPointCounter] = [:]
        var responses: [Kind: Counter] = [:]
        for kind in Kind.allCases {
            seconds[kind] = FloatingPointCounter(label: "spool_quota_throttle_seconds_total", dimensions: [("kind", kind.rawValue)], factory: factory)
            responses[kind] = Counter(label: "spool_quota_throttled_responses_total", dimensions: [("kind", kind.rawValue)], factory: factory)
        }
        throttledSeconds = seconds
        throttledResponses = responses
    }

    /// The quota that applies to a client and the entity it comes from, nil when none does.
    public func quota(_ kind: Kind, user: String, clientId: String) -> (entity: QuotaEntity, bytesPerSecond: Int64)? {
        let quotas = store.all
        guard !quotas.isEmpty else { return nil }
        for entity in Self.precedence(user: user, clientId: clientId) {
            guard let values = quotas[entity] else { continue }
            if let rate = kind == .produce ? values.producerByteRate : values.consumerByteRate { return (entity, rate) }
        }
        return nil
    }

    /// Records `bytes` of `kind` for the client and returns how long to hold its answer
    /// (milliseconds; 0 when it is within its quota or has none).
    public func record(_ kind: Kind, user: String, clientId: String, bytes: Int, nowMillis: Int64) -> Int64 {
        guard let (entity, limit) = quota(kind, user: user, clientId: clientId) else { return 0 }
        let key = SensorKey(kind: kind, user: entity.user == nil ? nil : user, clientId: entity.clientId == nil ? nil : clientId)
        let rate = sensors.withLockedValue { sensors -> (rate: Double, window: Int64) in
            if sensors[key] == nil && sensors.count >= config.maxSensors { Self.evict(&sensors, now: nowMillis, idle: config.sensorIdleMillis) }
            var sampler = sensors[key] ?? ByteRateSampler(samples: config.samples, windowMillis: config.windowMillis)
            sampler.record(Int64(bytes), now: nowMillis)
            let rate = sampler.rate(now: nowMillis)
            let window = sampler.elapsedMillis(now: nowMillis)
            sensors[key] = sampler
            return (rate, window)
        }
        let throttle = Self.throttleMillis(rate: rate.rate, quota: Double(limit), windowMillis: rate.window,
                                           maxMillis: Int64(config.samples) * config.windowMillis)
        if throttle > 0 {
            throttledResponses[kind]?.increment()
            throttledSeconds[kind]?.increment(by: Double(throttle) / 1000)
        }
        return throttle
    }

    /// Kafka's throttle time for a sensor at `rate` against `quota` (bytes/s).
    static func throttleMillis(rate: Double, quota: Double, windowMillis: Int64, maxMillis: Int64) -> Int64 {
        guard rate > quota, quota > 0 else { return 0 }
        let millis = (rate - quota) / quota * Double(windowMillis)
        return min(maxMillis, Int64(millis.rounded(.up)))
    }

    /// The entities that may hold a client's quota, in Kafka's order of precedence.
    static func precedence(user: String, clientId: String) -> [QuotaEntity] {
        let u = QuotaEntity.Part.name(user), c = QuotaEntity.Part.name(clientId), d = QuotaEntity.Part.defaultEntity
        return [
            QuotaEntity(user: u, clientId: c), QuotaEntity(user: u, clientId: d), QuotaEntity(user: u),
            QuotaEntity(user: d, clientId: c), QuotaEntity(user: d, clientId: d), QuotaEntity(user: d),
            QuotaEntity(clientId: c), QuotaEntity(clientId: d),
        ]
    }

    /// Drops idle sensors, then the least recently used if still full.
    private static func evict(_ sensors: inout [SensorKey: ByteRateSampler], now: Int64, idle: Int64) {
        sensors = sensors.filter { now - $0.value.lastRecordMillis < idle }
        if sensors.count >= 1, let oldest = sensors.min(by: { $0.value.lastRecordMillis < $1.value.lastRecordMillis }) {
            sensors.removeValue(forKey: oldest.key)
        }
    }

    /// Sensors held now (for tests).
    var sensorCount: Int { sensors.withLockedValue { $0.count } }
}

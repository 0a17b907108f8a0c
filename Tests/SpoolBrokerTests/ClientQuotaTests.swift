import CoreMetrics
import Foundation
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Testing

/// Client quotas: Kafka's precedence of entities, its rate measure and throttle formula,
/// per-name tracking under defaults, and the stored file.
@Suite struct ClientQuotaTests {
    static func store() throws -> (ClientQuotaStore, String) {
        let directory = NSTemporaryDirectory() + "spool-quota-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (try ClientQuotaStore(dataDirectory: directory), directory)
    }

    static func manager(_ store: ClientQuotaStore, samples: Int = 11) -> ClientQuotaManager {
        var config = ClientQuotaManager.Config()
        config.samples = samples
        return ClientQuotaManager(store: store, config: config, factory: NOOPMetricsHandler.instance)
    }

    @Test func theMostSpecificEntityWinsInKafkasOrder() throws {
        let (store, directory) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try store.set(QuotaEntity(user: .name("alice"), clientId: .name("app")), QuotaValues(producerByteRate: 1))
        try store.set(QuotaEntity(user: .name("alice")), QuotaValues(producerByteRate: 2, consumerByteRate: 20))
        try store.set(QuotaEntity(user: .defaultEntity), QuotaValues(producerByteRate: 3))
        try store.set(QuotaEntity(clientId: .name("app")), QuotaValues(producerByteRate: 4))
        try store.set(QuotaEntity(clientId: .defaultEntity), QuotaValues(consumerByteRate: 50))
        let quotas = Self.manager(store)
        #expect(quotas.quota(.produce, user: "alice", clientId: "app")?.bytesPerSecond == 1)
        #expect(quotas.quota(.produce, user: "alice", clientId: "other")?.bytesPerSecond == 2)
        #expect(quotas.quota(.fetch, user: "alice", clientId: "app")?.bytesPerSecond == 20, "alice's own fetch rate, above the client defaults")
        #expect(quotas.quota(.produce, user: "bob", clientId: "app")?.bytesPerSecond == 3, "the default user comes before a client id")
        #expect(quotas.quota(.fetch, user: "bob", clientId: "app")?.bytesPerSecond == 50, "no user level has a fetch rate: the default client's")
        try store.set(QuotaEntity(user: .defaultEntity), QuotaValues())
        #expect(quotas.quota(.produce, user: "bob", clientId: "app")?.bytesPerSecond == 4)
        #expect(quotas.quota(.produce, user: "bob", clientId: "x") == nil)
    }

    @Test func aClientOverItsRateIsThrottledByKafkasFormula() throws {
        let (store, directory) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try store.set(QuotaEntity(clientId: .name("fast")), QuotaValues(producerByteRate: 1000))
        let quotas = Self.manager(store, samples: 2)
        // A young sensor counts as one whole window (samples - 1) old: 1,000 bytes in it is the quota.
        #expect(quotas.record(.produce, user: "u", clientId: "fast", bytes: 1000, nowMillis: 10_000) == 0)
        // 3,000 bytes over a 1 s window against 1,000 B/s: (3000 - 1000) / 1000 × 1000 ms.
        #expect(quotas.record(.produce, user: "u", clientId: "fast", bytes: 2000, nowMillis: 10_000) == 2000)
        // Capped at the whole sampled window (2 × 1 s).
        #expect(quotas.record(.produce, user: "u", clientId: "fast", bytes: 1_000_000, nowMillis: 10_001) == 2000)
        // Windows older than the samples are forgotten: later the client is within its rate again.
        #expect(quotas.record(.produce, user: "u", clientId: "fast", bytes: 10, nowMillis: 20_000) == 0)
        // A client with no quota is never tracked.
        #expect(quotas.record(.fetch, user: "u", clientId: "fast", bytes: 1 << 30, nowMillis: 20_000) == 0)
        #expect(quotas.record(.produce, user: "u", clientId: "other", bytes: 1 << 30, nowMillis: 20_000) == 0)
        #expect(quotas.sensorCount == 1)
    }

    @Test func aDefaultAppliesToEachNameOnItsOwn() throws {
        let (store, directory) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try store.set(QuotaEntity(clientId: .defaultEntity), QuotaValues(producerByteRate: 1000))
        let quotas = Self.manager(store, samples: 2)
        #expect(quotas.record(.produce, user: "u", clientId: "a", bytes: 1000, nowMillis: 5_000) == 0)
        #expect(quotas.record(.produce, user: "u", clientId: "b", bytes: 1000, nowMillis: 5_000) == 0, "b has a quota of its own, not a share of a's")
        #expect(quotas.record(.produce, user: "u", clientId: "a", bytes: 1000, nowMillis: 5_000) > 0)
        #expect(quotas.sensorCount == 2)
    }

    @Test func storedQuotasSurviveAReopenAndBadRatesAreRefused() throws {
        let (store, directory) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let odd = QuotaEntity(user: .name("we\tird %name"), clientId: .defaultEntity)
        try store.set(odd, QuotaValues(producerByteRate: 7, consumerByteRate: 8))
        try store.set(QuotaEntity(clientId: .name("gone")), QuotaValues(producerByteRate: 9))
        try store.set(QuotaEntity(clientId: .name("gone")), QuotaValues())
        #expect(throws: StorageError.self) { try store.set(QuotaEntity(clientId: .name("x")), QuotaValues(producerByteRate: 0)) }
        let reopened = try ClientQuotaStore(dataDirectory: directory)
        #expect(reopened.all == [odd: QuotaValues(producerByteRate: 7, consumerByteRate: 8)])
    }

    @Test func theRateOfAYoungSensorIsTakenOverTheWholeWindow() {
        var sampler = ByteRateSampler(samples: 11, windowMillis: 1000)
        sampler.record(10_000, now: 0)
        #expect(sampler.elapsedMillis(now: 0) == 10_000)
        #expect(sampler.rate(now: 0) == 1000)
        sampler.record(10_000, now: 15_000)
        #expect(sampler.elapsedMillis(now: 15_000) == 10_000, "the first window expired; the second is young again")
        #expect(ClientQuotaManager.throttleMillis(rate: 1500, quota: 1000, windowMillis: 10_000, maxMillis: 11_000) == 5000)
        #expect(ClientQuotaManager.throttleMillis(rate: 900, quota: 1000, windowMillis: 10_000, maxMillis: 11_000) == 0)
    }
}

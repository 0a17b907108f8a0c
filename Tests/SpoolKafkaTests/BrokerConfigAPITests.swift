import NIOCore
import SpoolBroker
import Testing
@testable import SpoolKafka

/// DescribeConfigs / AlterConfigs / IncrementalAlterConfigs on BROKER resources (type 4):
/// the broker's own settings listed read-only and never changed while it runs, any other key
/// kept as a dynamic setting per broker or as the cluster default, and a resource naming
/// another broker refused.
@Suite(.serialized) struct BrokerConfigAPITests {
    static let broker: Int8 = 4

    func describe(_ h: KafkaHarness, _ name: String, id: Int32) async throws -> DescribeConfigsResponse.Result {
        try await h.send(.describeConfigs, version: 1, correlationId: id, DescribeConfigsRequest(resources: [
            .init(resourceType: Self.broker, resourceName: name, configurationKeys: nil)]))
        var (_, body) = try await h.receive(flexibleHeader: false)
        return try #require(try DescribeConfigsResponse(from: &body, version: 1).results.first)
    }

    func alter(_ h: KafkaHarness, _ name: String, _ configs: [String: String], id: Int32) async throws -> AlterConfigsResponse.Result {
        try await h.send(.alterConfigs, version: 1, correlationId: id, AlterConfigsRequest(resources: [
            .init(resourceType: Self.broker, resourceName: name, configs: configs.map { .init(name: $0.key, value: $0.value) })]))
        var (_, body) = try await h.receive(flexibleHeader: false)
        return try #require(try AlterConfigsResponse(from: &body, version: 1).responses.first)
    }

    @Test func staticSettingsAreReadOnlyAndOtherKeysAreKeptPerBrokerAndAsClusterDefaults() async throws {
        let h = try await KafkaHarness(broker: {
            $0.staticSettings = ["default.partitions": "1", "listen": "127.0.0.1:0"]
            $0.staticSettingKeys = ["default.partitions", "listen", "max.connections"]
        })
        // The broker's own settings, read-only, from its start (STATIC_BROKER_CONFIG = 4).
        var described = try await describe(h, "0", id: 1)
        #expect(described.errorCode == 0)
        let listen = try #require(described.configs.first { $0.name == "listen" })
        #expect(listen.value == "127.0.0.1:0" && listen.readOnly && listen.configSource == 4)

        // librdkafka's 0081_admin sets a key Spool has no use of on the broker: kept, as Kafka
        // keeps settings for plugins; a static key is refused with a message.
        #expect(try await alter(h, "0", ["sasl.kerberos.min.time.before.relogin": "58000"], id: 2).errorCode == 0)
        let refused = try await alter(h, "0", ["max.connections": "5"], id: 3)
        #expect(refused.errorCode == KafkaErrorCode.invalidRequest.rawValue)
        #expect(refused.errorMessage?.contains("max.connections") == true)
        #expect(try await alter(h, "", ["custom.plugin.setting": "a b\tc ☃"], id: 4).errorCode == 0)

        described = try await describe(h, "0", id: 5)
        let kerberos = try #require(described.configs.first { $0.name == "sasl.kerberos.min.time.before.relogin" })
        #expect(kerberos.value == "58000" && !kerberos.readOnly && kerberos.configSource == 2, "DYNAMIC_BROKER_CONFIG")
        let inherited = try #require(described.configs.first { $0.name == "custom.plugin.setting" })
        #expect(inherited.value == "a b\tc ☃" && inherited.configSource == 3, "DYNAMIC_DEFAULT_BROKER_CONFIG")
        #expect(described.configs.first { $0.name == "max.connections" } == nil, "the refused change left nothing")
        // The cluster default alone lists no broker's own settings.
        #expect(try await describe(h, "", id: 6).configs.map(\.name) == ["custom.plugin.setting"])

        // IncrementalAlterConfigs deletes (op 1) one key and sets (op 0) another.
        try await h.send(.incrementalAlterConfigs, version: 0, correlationId: 7, IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: Self.broker, resourceName: "0", configs: [
                .init(name: "sasl.kerberos.min.time.before.relogin", configOperation: 1, value: nil),
                .init(name: "other.setting", configOperation: 0, value: "1")])]))
        var (_, body) = try await h.receive(flexibleHeader: false)
        #expect(try IncrementalAlterConfigsResponse(from: &body, version: 0).responses.first?.errorCode == 0)
        described = try await describe(h, "0", id: 8)
        #expect(described.configs.filter { $0.configSource == 2 }.map(\.name) == ["other.setting"])

        // Another broker's resource, or a name that is no node id: refused, nothing written.
        #expect(try await alter(h, "7", ["x": "1"], id: 9).errorCode == KafkaErrorCode.invalidRequest.rawValue)
        let misnamed = try await describe(h, "broker-0", id: 10)
        #expect(misnamed.errorCode == KafkaErrorCode.invalidRequest.rawValue && misnamed.errorMessage?.contains("node id") == true)
        #expect(h.broker.describeBrokerConfigs(.broker(7)).allSatisfy { $0.source != .dynamicBroker })
        try await h.stop()
    }
}

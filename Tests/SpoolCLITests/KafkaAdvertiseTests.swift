import Foundation
import SpoolKafka
import SpoolTestSupport
import Testing

/// `--kafka-advertise` / `kafka.advertise` as Kafka's `advertised.listeners`: one address per
/// listener, matched by security protocol, told in Metadata on that listener.
@Suite struct KafkaAdvertiseTests {
    @Test func eachListenerAdvertisesItsOwnAddress() throws {
        let dir = NSTemporaryDirectory() + "spool-adv-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try BrokerProcess(arguments: [
            "broker", "--data-dir", dir, "--listen", "127.0.0.1:0",
            "--kafka-listen", "127.0.0.1:0", "--kafka-listen", "SASL_PLAINTEXT://127.0.0.1:0",
            "--kafka-advertise", "SASL_PLAINTEXT://sasl.example:19093", "--kafka-advertise", "PLAINTEXT://plain.example:19092",
        ], directory: dir)
        defer { _ = broker.terminate() }
        let port = try broker.kafkaPort()
        #expect(broker.logText.contains("(advertised as plain.example:19092)"), "\(broker.logText)")
        #expect(broker.logText.contains("(advertised as sasl.example:19093)"), "\(broker.logText)")
        let metadata: MetadataResponse = try ClusterTestSupport.call(port, .metadata, version: 8, MetadataRequest(topics: [], allowAutoTopicCreation: false))
        #expect(metadata.brokers.map { "\($0.host):\($0.port)" } == ["plain.example:19092"], "\(metadata.brokers)")
    }

    @Test func aBareAddressServesTheOneListenerAndMismatchesAreRefused() throws {
        let dir = NSTemporaryDirectory() + "spool-adv-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // One listener of any protocol takes a bare HOST:PORT (as before per-listener entries).
        let one = try BrokerProcess(arguments: [
            "broker", "--data-dir", dir, "--listen", "127.0.0.1:0",
            "--kafka-listen", "SASL_PLAINTEXT://127.0.0.1:0", "--kafka-advertise", "only.example:9093",
        ], directory: dir)
        #expect(one.logText.contains("(advertised as only.example:9093)"), "\(one.logText)")
        #expect(one.terminate() == 0)
        for (advertise, message) in [
            ("SSL://tls.example:9094", "has no SSL listener left"),
            ("PLAINTEXT://a.example:1,PLAINTEXT://b.example:2", "has no PLAINTEXT listener left"),
            ("no-port", "kafka.advertise must list [PROTOCOL://]HOST:PORT entries"),
        ] {
            let r = try runCommand("spool", ["broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--http-listen", "none",
                                             "--kafka-listen", "127.0.0.1:0", "--kafka-advertise", advertise])
            #expect(r.status != 0 && r.stderr.contains(message), "\(advertise): \(r.status) \(r.stderr)")
        }
    }
}

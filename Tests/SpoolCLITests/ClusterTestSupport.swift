import Foundation
import SpoolKafka
import SpoolTestSupport

/// What the cluster suites share: `spool broker --etcd` processes started off the cooperative
/// pool, and raw Kafka calls (one request on a fresh connection, its response decoded).
enum ClusterTestSupport {
    /// Starts broker `id` of cluster `clusterId` on `etcd` (lease TTL `ttlSeconds`), with its data
    /// in a new temporary directory and `extra` arguments after the cluster ones.
    static func startBroker(_ id: Int32, _ etcd: EtcdCluster, clusterId: String, ttlSeconds: Int = 3, extra: [String] = [],
                            directory: String = NSTemporaryDirectory() + "spool-cluster-" + UUID().uuidString) async throws -> BrokerProcess {
        let endpoints = etcd.endpoints
        return try await offPool {
            try BrokerProcess(arguments: [
                "broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--node-id", String(id),
                "--etcd", endpoints, "--cluster-id", clusterId, "--cluster-lease-ttl-seconds", String(ttlSeconds)] + extra, directory: directory)
        }
    }

    /// One Kafka request to 127.0.0.1:`port`, blocking (call it through `offPool` from async code).
    static func call<Response: KafkaMessage>(_ port: Int, _ api: KafkaApiKey, version: Int16, _ body: some KafkaMessage,
                                             timeoutSeconds: Int = 10) throws -> Response {
        let connection = try KafkaBlockingConnection(port: port, timeoutSeconds: timeoutSeconds)
        var reader = KafkaReader(try connection.call(api, version: version, body))
        return try Response(from: &reader, version: version)
    }
}

import ArgumentParser
import SpoolCluster
import SpoolEtcd

/// Where a cluster's records are: `--etcd URL[,URL...] --cluster-id C [--timeout-seconds N]`,
/// for the commands that operate a cluster straight on etcd (`spool cluster …`, `spool topic reassign`).
struct EtcdAddress: ParsableArguments {
    @Option(help: "etcd client URLs, comma-separated.") var etcd: String = "http://127.0.0.1:2379"
    @Option(help: "The cluster's id.") var clusterId: String
    @Option(help: "Give up after this many seconds without an answer from etcd.") var timeoutSeconds: Int = 10

    func validate() throws {
        try Self.validate(clusterId: clusterId, timeoutSeconds: timeoutSeconds)
    }

    /// A client for the endpoints; shut it down when done.
    func client() throws -> EtcdClient {
        try Self.client(etcd: etcd, timeoutSeconds: timeoutSeconds)
    }

    static func validate(clusterId: String, timeoutSeconds: Int) throws {
        guard ClusterConfiguration.isValidClusterId(clusterId) else { throw ValidationError("--cluster-id must be [A-Za-z0-9._-]+") }
        guard (1...600).contains(timeoutSeconds) else { throw ValidationError("--timeout-seconds must be in 1...600") }
    }

    static func client(etcd: String, timeoutSeconds: Int) throws -> EtcdClient {
        let endpoints: [EtcdEndpoint]
        do { endpoints = try EtcdEndpoint.list(etcd) } catch { throw ValidationError("--etcd must be http://HOST:PORT[,...] (got '\(etcd)')") }
        var configuration = EtcdClientConfiguration(endpoints: endpoints)
        configuration.requestTimeout = .seconds(timeoutSeconds)
        return try EtcdClient(configuration: configuration)
    }
}

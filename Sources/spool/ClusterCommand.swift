import ArgumentParser
import Foundation
import SpoolCluster
import SpoolEtcd

/// `spool cluster`: looks at a cluster through etcd.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Inspect and operate a Spool cluster (brokers started with --etcd).",
        subcommands: [ClusterStatusCommand.self, ElectLeadersCommand.self]
    )
}

/// `spool cluster status --etcd URL[,URL...] --cluster-id C [--json]`: the registered brokers and the controller.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List the live brokers (id, addresses, lease, epoch) and the controller.",
        discussion: """
            Example:
              spool cluster status --etcd http://127.0.0.1:2379,http://127.0.0.1:12379 --cluster-id c1
            Also counts partitions (from etcd) and lists the under-replicated and offline ones.
            """
    )

    @Option(help: "etcd client URLs, comma-separated.") var etcd: String = "http://127.0.0.1:2379"
    @Option(help: "The cluster's id.") var clusterId: String
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Give up after this many seconds without an answer from etcd.") var timeoutSeconds: Int = 10

    func validate() throws {
        guard ClusterConfiguration.isValidClusterId(clusterId) else { throw ValidationError("--cluster-id must be [A-Za-z0-9._-]+") }
        guard (1...600).contains(timeoutSeconds) else { throw ValidationError("--timeout-seconds must be in 1...600") }
    }

    func run() async throws {
        let endpoints: [EtcdEndpoint]
        do { endpoints = try EtcdEndpoint.list(etcd) } catch { throw ValidationError("--etcd must be http://HOST:PORT[,...] (got '\(etcd)')") }
        var configuration = EtcdClientConfiguration(endpoints: endpoints)
        configuration.requestTimeout = .seconds(timeoutSeconds)
        let client = try EtcdClient(configuration: configuration)
        defer { client.shutdown() }
        let status: ClusterStatus
        do {
            status = try await ClusterStatus.read(client: client, clusterId: clusterId)
        } catch let error as EtcdError {
            throw CLIError("cannot read the cluster from etcd (\(etcd)): \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
        } else {
            print(status.text)
        }
    }
}

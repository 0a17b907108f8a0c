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

    @OptionGroup var cluster: EtcdAddress
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let client = try cluster.client()
        defer { client.shutdown() }
        let clusterId = cluster.clusterId, etcd = cluster.etcd
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

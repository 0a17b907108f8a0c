import ArgumentParser
import Foundation
import SpoolBroker
import SpoolCluster
import SpoolCoordination
import SpoolRecords

/// `spool topic reassign --topic T --partition P --replicas 3,1,2 | --cancel`, and `--list`:
/// Kafka's AlterPartitionReassignments / ListPartitionReassignments from the command line, on
/// etcd (`ClusterOperations`). The controller completes a reassignment once its target
/// replicas are all in the ISR.
struct ReassignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reassign",
        abstract: "Move a partition to other brokers (or cancel, or list moves in progress).",
        discussion: """
            Examples:
              spool topic reassign --etcd http://127.0.0.1:2379 --cluster-id c1 --topic orders --partition 0 --replicas 2,3
              spool topic reassign --etcd http://127.0.0.1:2379 --cluster-id c1 --topic orders --partition 0 --cancel
              spool topic reassign --etcd http://127.0.0.1:2379 --cluster-id c1 --list
            New replicas copy the partition from the leader and join the ISR; then the target becomes the
            replica set, leadership moves if the leader leaves, and removed brokers delete their copy.
            """
    )

    @OptionGroup var cluster: EtcdAddress
    @Option(help: "The topic.") var topic: String?
    @Option(help: "The partition.") var partition: Int32?
    @Option(help: "The target replicas, comma-separated broker ids (the first is the preferred leader).") var replicas: String?
    @Flag(help: "Cancel the partition's reassignment: back to its original replicas.") var cancel = false
    @Flag(help: "List the reassignments in progress (of --topic if given).") var list = false
    @Flag(help: "Print JSON (with --list).") var json = false

    func validate() throws {
        let modes = [replicas != nil, cancel, list].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("give exactly one of --replicas, --cancel, --list") }
        if !list {
            guard topic != nil, let partition, partition >= 0 else { throw ValidationError("--replicas and --cancel need --topic and --partition (0 or more)") }
        }
        if let replicas, targetReplicas(replicas) == nil { throw ValidationError("--replicas must be broker ids separated by commas (got '\(replicas)')") }
    }

    func targetReplicas(_ text: String) -> [Int32]? {
        let ids = text.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ $0 != nil }) else { return nil }
        return ids.map { $0! }
    }

    func run() async throws {
        let client = try cluster.client()
        defer { client.shutdown() }
        let operations = ClusterOperations(client: client, keys: try ClusterKeys(clusterId: cluster.clusterId))
        if list {
            var statuses = try await operations.listReassignments(nil)
            if let topic { statuses = statuses.filter { $0.partition.topic == topic } }
            if json {
                let rows = statuses.map { ["topic": $0.partition.topic, "partition": "\($0.partition.partition)", "replicas": ids($0.replicas),
                                           "adding": ids($0.adding), "removing": ids($0.removing)] }
                print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self))
            } else if statuses.isEmpty {
                print("no reassignment in progress")
            } else {
                print("partition\treplicas\tadding\tremoving")
                for s in statuses { print("\(s.partition)\t\(ids(s.replicas))\t\(ids(s.adding))\t\(ids(s.removing))") }
            }
            return
        }
        let tp = TopicPartition(topic!, partition!)
        let outcomes = await operations.alterReassignments([(tp, cancel ? nil : targetReplicas(replicas!))])
        print(OutcomeText.lines(outcomes, success: cancel ? "reassignment cancelled" : "reassignment started"))
        if outcomes.contains(where: { $0.failure != nil }) { throw ExitCode(1) }
    }

    private func ids(_ list: [Int32]) -> String { list.map(String.init).joined(separator: ",") }
}

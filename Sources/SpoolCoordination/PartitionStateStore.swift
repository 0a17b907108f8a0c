import SpoolEtcd

/// Reads and compare-and-swaps partition state records. A write succeeds only if the record's
/// mod revision is still the one the writer read (or, for `create`, the record does not exist),
/// in one etcd transaction whose failure branch reads the record back, so a conflict comes with
/// what won.
///
/// A write whose answer was lost (`EtcdError` `.timeout` / `.unavailable`) may have applied: the
/// client does not repeat transactions. Re-read; a record equal to what you proposed is yours.
public struct PartitionStateStore: Sendable {
    public let client: EtcdClient
    public let keys: ClusterKeys

    public init(client: EtcdClient, keys: ClusterKeys) {
        self.client = client
        self.keys = keys
    }

    /// The record now (nil if absent).
    public func read(topic: String, partition: Int32) async throws -> VersionedPartitionState? {
        guard let kv = try await client.get(try keys.partitionState(topic: topic, partition: partition)) else { return nil }
        return try Self.versioned(kv)
    }

    /// Every partition's record of `topic`, by partition number.
    public func readAll(topic: String) async throws -> [Int32: VersionedPartitionState] {
        let prefix = try keys.partitionsPrefix(topic: topic)
        let range = try await client.range(.prefix(prefix))
        var states: [Int32: VersionedPartitionState] = [:]
        for kv in range.kvs {
            let rest = kv.key.dropFirst(prefix.count)
            guard rest.hasSuffix("/state"), let partition = Int32(rest.dropLast("/state".count)) else { continue }
            states[partition] = try Self.versioned(kv)
        }
        return states
    }

    /// Writes the first record of a partition, if it has none.
    public func create(topic: String, partition: Int32, state: PartitionState) async throws -> PartitionStateUpdate {
        try await write(topic: topic, partition: partition, state: state, compare: { .createRevision($0, .equal, 0) })
    }

    /// Replaces the record if its mod revision is still `expectedModRevision`.
    public func compareAndSwap(topic: String, partition: Int32, expectedModRevision: Int64, state: PartitionState) async throws -> PartitionStateUpdate {
        guard expectedModRevision > 0 else { throw EtcdError(.invalidArgument, "expected mod revision \(expectedModRevision) is not a revision") }
        return try await write(topic: topic, partition: partition, state: state, compare: { .modRevision($0, .equal, expectedModRevision) })
    }

    private func write(topic: String, partition: Int32, state: PartitionState, compare: (String) -> EtcdCompare) async throws -> PartitionStateUpdate {
        guard state.leaderEpoch >= 0, state.partitionEpoch >= 0, state.leader >= -1 else {
            throw EtcdError(.invalidArgument, "partition state \(state) has a negative epoch or leader below -1")
        }
        let key = try keys.partitionState(topic: topic, partition: partition)
        let txn = try await client.txn(
            compare: [compare(key)], success: [.put(key, try JSONValue.encode(state))], failure: [.range(.key(key))])
        if txn.succeeded { return .success(modRevision: txn.revision) }
        return .conflict(current: try txn.firstRangeKeyValue.map(Self.versioned))
    }

    static func versioned(_ kv: EtcdKeyValue) throws -> VersionedPartitionState {
        VersionedPartitionState(state: try JSONValue.decode(PartitionState.self, from: kv), modRevision: kv.modRevision)
    }
}

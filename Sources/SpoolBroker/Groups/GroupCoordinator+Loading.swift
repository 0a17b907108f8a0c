import SpoolRecords
import SpoolStorage

// Cluster mode: a coordinator that gains or loses the groups of an offsets-topic partition.
extension GroupCoordinator {
    /// Forgets the membership of every group `matching` accepts: held JoinGroups and
    /// SyncGroups are answered `notCoordinator` (their members find the new coordinator and
    /// rejoin there). Committed offsets stay until `replaceOffsets` reloads them.
    public func unload(matching: @Sendable (String) -> Bool) {
        locked { s, fx in
            for (groupId, group) in s.groups where matching(groupId) {
                for member in group.members.values {
                    fail(&member.awaitingJoin, .notCoordinator, "this broker no longer coordinates group \(groupId)", &fx)
                    fail(&member.awaitingSync, .notCoordinator, "this broker no longer coordinates group \(groupId)", &fx)
                }
                s.groups.removeValue(forKey: groupId)
            }
        }
    }

    /// Replaces the committed offsets of every group `matching` accepts with `table` (what
    /// the offsets topic holds for them), on the offsets queue, after any write in flight.
    public func replaceOffsets(matching: @escaping @Sendable (String) -> Bool,
                               with table: [String: [TopicPartition: CommittedOffset]]) async throws {
        let store = store
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            ioQueue.async {
                do {
                    for groupId in store.groups where matching(groupId) && table[groupId] == nil {
                        try store.removeGroup(groupId)
                    }
                    for (groupId, offsets) in table where matching(groupId) {
                        let stale = store.committed(group: groupId).keys.filter { offsets[$0] == nil }
                        if !stale.isEmpty { try store.removeOffsets(group: groupId, stale) }
                        if !offsets.isEmpty { try store.commit(group: groupId, offsets) }
                    }
                    c.resume()
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }
}

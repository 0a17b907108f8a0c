import SpoolRecords
import SpoolStorage

/// Which groups this broker coordinates, and how their changes become durable beyond it:
/// in cluster mode, the leader of a group's partition of the offsets topic coordinates it,
/// and a commit is answered once that partition's ISR holds it (`ReplicatedGroupOffsets`).
/// A single broker has none: it coordinates every group and keeps offsets in its own store.
public protocol GroupOwnership: Sendable {
    /// Throws `notCoordinator`, `coordinatorLoadInProgress` or `coordinatorNotAvailable` unless
    /// this broker coordinates `group` now. Never blocks (a load it starts runs on its own).
    func checkCoordinates(_ group: String) throws(GroupCoordinatorError)

    /// Whether this broker coordinates `group` now (ListGroups shows only those).
    func coordinates(_ group: String) -> Bool

    /// Makes `change` durable in the cluster, then calls back (on any thread).
    func replicate(_ change: GroupOffsetsChange, completion: @escaping @Sendable (Result<Void, GroupCoordinatorError>) -> Void)
}

/// A change to a group's committed offsets, as the offsets topic records it.
public enum GroupOffsetsChange: Sendable, Equatable {
    /// New committed offsets.
    case commit(group: String, offsets: [TopicPartition: CommittedOffset])
    /// Committed offsets removed (DeleteGroups, OffsetDelete): tombstones.
    case remove(group: String, partitions: [TopicPartition])

    public var group: String {
        switch self {
        case .commit(let group, _), .remove(let group, _): group
        }
    }
}

/// A reassignment in progress for one partition (Kafka's KIP-455), kept in the topic record
/// (`TopicRecord.reassignments`) while it runs: the replicas before it (`original`) and the ones
/// asked for (`target`). Meanwhile the partition's assignment is the union, `target` first then
/// the original replicas that leave (`fullReplicas`), so new replicas fetch and join the ISR
/// while the old ones still serve; the controller then makes `target` the assignment.
public struct PartitionReassignment: Codable, Sendable, Hashable {
    public var original: [Int32]
    public var target: [Int32]

    public init(original: [Int32], target: [Int32]) {
        self.original = original
        self.target = target
    }

    /// Replicas the reassignment adds (in the target, not in the original).
    public var adding: [Int32] { target.filter { !original.contains($0) } }
    /// Replicas the reassignment removes (in the original, not in the target).
    public var removing: [Int32] { original.filter { !target.contains($0) } }
    /// The assignment while it runs: the target, then the leaving originals (Kafka's order).
    public var fullReplicas: [Int32] { target + removing }
}

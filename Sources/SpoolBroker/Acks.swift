/// When a produce is acknowledged.
public enum Acks: Sendable, Hashable {
    /// Fire and forget: the client expects no answer.
    case none
    /// Once the batch is in the log (page cache).
    case leader
    /// Once the batch is on stable storage (fsync, shared by a group commit).
    case all
}

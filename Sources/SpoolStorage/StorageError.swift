/// What went wrong in the storage layer.
///
/// Operating errors (bad requests, full disk, failed fsync) are reported with
/// these; programmer errors trip assertions instead.
public struct StorageError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// An offset below the log start or above the log end.
        case offsetOutOfRange
        /// The topic does not exist.
        case unknownTopic
        /// The partition number is not one of the topic's.
        case unknownPartition
        /// A topic with that name exists already.
        case topicExists
        /// The topic name breaks Kafka's naming rules.
        case invalidTopicName
        /// A config key is unknown or its value is invalid.
        case invalidConfig
        /// A batch is bigger than the topic's `max.message.bytes`.
        case recordTooLarge
        /// The partition stopped after a failed write or fsync (its data state is unknown)
        /// and refuses appends until it is recovered (`LogManager.recover(topic:)`).
        case logFailed
        /// A file operation failed.
        case io
        /// A descriptor (or memory) could not be had: `open`/`dup` failed with EMFILE,
        /// ENFILE or ENOMEM. Only the one request fails; the partition goes on.
        case resourceExhausted
        /// On-disk data is corrupt beyond what recovery repairs.
        case corrupt
        /// A batch breaks a rule of the topic (a record without a key on a compacted topic).
        case invalidRecord
        /// The store is shutting down or closed, or the partition was deleted.
        case closed
    }

    public var code: Code
    public var message: String
    /// The `errno` of the system call that failed, when one did.
    public var errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

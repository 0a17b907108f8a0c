import SpoolStorage

/// A failure of the broker core, as every listener sees it: the core translates its
/// storage layer's errors into these (listeners never import the storage), and leaves
/// record-format (`RecordsError`), producer-state and group-coordinator errors as they are.
///
/// Listeners map the code to their own status (a native status code, a Kafka error code).
public struct BrokerError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// The request itself is invalid (bad argument, empty partition list, …).
        case invalidRequest
        /// The broker is shutting down.
        case shuttingDown
        /// The call was cancelled by the client or by its connection closing.
        case cancelled
        /// A budget was exhausted, or a descriptor (or memory) could not be had: only the
        /// one request fails, and trying again later may succeed.
        case resourceExhausted
        /// An offset below the log start or above the log end (or a segment that retention
        /// deleted between planning and sending).
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
        /// A batch or record is bigger than the topic's `max.message.bytes`, or than one
        /// response can carry.
        case recordTooLarge
        /// The partition stopped after a failed write or fsync (its data state is unknown)
        /// and refuses appends until it is recovered.
        case partitionStopped
        /// A file operation failed.
        case storageFailed
        /// On-disk data is corrupt beyond what recovery repairs.
        case corrupt
        /// A batch breaks a rule of the topic (a record without a key on a compacted topic).
        case invalidRecord
        /// The partition was closed (the broker is stopping) or deleted with its topic.
        case partitionClosed
        /// This broker does not lead the partition (it follows, or no leader is known).
        case notLeaderOrFollower
        /// acks=all: fewer in-sync replicas than `min.insync.replicas`; nothing was written.
        case notEnoughReplicas
        /// acks=all: written, but the ISR shrank below `min.insync.replicas` before the
        /// high watermark reached it (the records are in the log).
        case notEnoughReplicasAfterAppend
        /// acks=all: not replicated within the request's timeout (outcome unknown).
        case requestTimedOut
        /// The request's leader epoch is older than the partition's (KIP-320).
        case fencedLeaderEpoch
        /// The request's leader epoch is newer than this broker knows (retriable).
        case unknownLeaderEpoch
        /// Cluster mode: more replicas asked for than there are live brokers (or fewer than 1).
        case invalidReplicationFactor
        /// Cluster mode: a manual replica assignment names unknown brokers, a broker twice, or
        /// partitions of different replica counts.
        case invalidReplicaAssignment
        /// Cluster mode: the cluster's metadata store (etcd) did not answer or has no quorum;
        /// nothing was changed, or the outcome is unknown (read it back).
        case clusterUnavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The storage layer's error in the core's terms (same sentence).
    init(_ storage: StorageError) {
        let code: Code
        switch storage.code {
        case .offsetOutOfRange: code = .offsetOutOfRange
        case .unknownTopic: code = .unknownTopic
        case .unknownPartition: code = .unknownPartition
        case .topicExists: code = .topicExists
        case .invalidTopicName: code = .invalidTopicName
        case .invalidConfig: code = .invalidConfig
        case .recordTooLarge: code = .recordTooLarge
        case .logFailed: code = .partitionStopped
        case .io: code = .storageFailed
        case .resourceExhausted: code = .resourceExhausted
        case .corrupt: code = .corrupt
        case .invalidRecord: code = .invalidRecord
        case .closed: code = .partitionClosed
        }
        self.init(code, storage.message)
    }

    /// `error` as listeners may see it: a `StorageError` becomes a `BrokerError`; every
    /// other error is returned as it is.
    static func translating(_ error: any Error) -> any Error {
        if let storage = error as? StorageError { return BrokerError(storage) }
        return error
    }

    /// A read-path failure as a `BrokerError` (the read path throws only storage and
    /// broker errors; anything else is reported as a storage failure).
    static func reading(_ error: any Error) -> BrokerError {
        switch error {
        case let e as BrokerError: return e
        case let e as StorageError: return BrokerError(e)
        default: return BrokerError(.storageFailed, "\(error)")
        }
    }

    /// Runs `body`, translating a storage error it throws (the core's public calls go
    /// through this, so no `StorageError` leaves the core).
    static func translate<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw translating(error)
        }
    }

    /// `translate` for async work.
    static func translateAsync<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw translating(error)
        }
    }
}

import SpoolBroker
import SpoolRecords

extension KafkaErrorCode {
    /// The Kafka error code for a failure of the broker core, matched by the error's code
    /// (the core translates its storage errors into `BrokerError`s).
    init(_ error: Error) {
        switch error {
        case let e as RecordsError:
            switch e.code {
            case .unsupportedCodec: self = .unsupportedCompressionType
            case .decompressedTooLarge: self = .messageTooLarge
            default: self = .corruptMessage
            }
        case let e as BrokerError:
            switch e.code {
            case .invalidRequest: self = .invalidRequest
            case .shuttingDown: self = .notLeaderOrFollower
            case .cancelled: self = .unknownServerError
            case .offsetOutOfRange: self = .offsetOutOfRange
            case .unknownTopic, .unknownPartition: self = .unknownTopicOrPartition
            case .topicExists: self = .topicAlreadyExists
            case .invalidTopicName: self = .invalidTopicException
            case .invalidConfig: self = .invalidConfig
            case .recordTooLarge: self = .messageTooLarge
            case .partitionStopped, .storageFailed: self = .kafkaStorageError
            case .resourceExhausted: self = .kafkaStorageError  // retriable: a descriptor shortage passes
            case .corrupt: self = .corruptMessage
            case .invalidRecord: self = .invalidRecord
            case .partitionClosed: self = .notLeaderOrFollower  // retriable: the broker is stopping
            case .notLeaderOrFollower: self = .notLeaderOrFollower
            case .notEnoughReplicas: self = .notEnoughReplicas
            case .notEnoughReplicasAfterAppend: self = .notEnoughReplicasAfterAppend
            case .requestTimedOut: self = .requestTimedOut
            case .fencedLeaderEpoch: self = .fencedLeaderEpoch
            case .unknownLeaderEpoch: self = .unknownLeaderEpoch
            case .invalidReplicationFactor: self = .invalidReplicationFactor
            case .invalidReplicaAssignment: self = .invalidReplicaAssignment
            case .clusterUnavailable: self = .requestTimedOut  // retriable; the outcome may be unknown
            }
        case let e as GroupCoordinatorError:
            self.init(e.code)
        case let e as TransactionError:
            self = KafkaAPIs.transactionCode(e, version: 0)
        case let e as ProducerStateError:
            switch e.code {
            case .outOfOrderSequenceNumber: self = .outOfOrderSequenceNumber
            case .duplicateSequenceNumber: self = .duplicateSequenceNumber
            case .invalidProducerEpoch: self = .invalidProducerEpoch
            case .invalidRecord: self = .invalidRecord
            }
        case let e as KafkaDecodingError:
            self = e.code == .unsupportedVersion ? .unsupportedVersion : .invalidRequest
        default:
            self = .unknownServerError
        }
    }
}

/// The error message Kafka responses carry next to a code (nil for none).
func kafkaErrorMessage(_ error: Error?) -> String? {
    guard let error else { return nil }
    switch error {
    case let e as BrokerError: return e.message
    default: return "\(error)"
    }
}

extension KafkaErrorCode {
    /// The Kafka error for a group coordinator refusal (the names are Kafka's).
    init(_ code: GroupCoordinatorError.Code) {
        switch code {
        case .unknownMemberId: self = .unknownMemberId
        case .illegalGeneration: self = .illegalGeneration
        case .rebalanceInProgress: self = .rebalanceInProgress
        case .memberIdRequired: self = .memberIdRequired
        case .inconsistentGroupProtocol: self = .inconsistentGroupProtocol
        case .fencedInstanceId: self = .fencedInstanceId
        case .invalidSessionTimeout: self = .invalidSessionTimeout
        case .nonEmptyGroup: self = .nonEmptyGroup
        case .groupIdNotFound: self = .groupIdNotFound
        case .invalidGroupId: self = .invalidGroupId
        case .coordinatorNotAvailable: self = .coordinatorNotAvailable
        case .unknownTopicOrPartition: self = .unknownTopicOrPartition
        case .offsetMetadataTooLarge: self = .offsetMetadataTooLarge
        case .invalidCommitOffset: self = .invalidCommitOffsetSize
        case .groupMaxSizeReached: self = .groupMaxSizeReached
        case .storageFailed: self = .kafkaStorageError
        case .groupSubscribedToTopic: self = .groupSubscribedToTopic
        case .notCoordinator: self = .notCoordinator
        case .coordinatorLoadInProgress: self = .coordinatorLoadInProgress
        }
    }
}

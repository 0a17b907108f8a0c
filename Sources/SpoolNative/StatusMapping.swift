import SpoolBroker
import SpoolProtocol
import SpoolRecords

/// Maps the broker core's errors (and record-format errors) to protocol status codes,
/// by their codes.
enum StatusMapping {
    static func status(for error: Error) -> SpoolStatusError {
        switch error {
        case let e as SpoolStatusError:
            return e
        case let e as BrokerError:
            switch e.code {
            case .invalidRequest, .invalidTopicName, .invalidConfig, .invalidRecord, .invalidReplicationFactor, .invalidReplicaAssignment: return SpoolStatusError(.invalidArgument, e.message)
            case .shuttingDown, .partitionStopped, .partitionClosed, .clusterUnavailable: return SpoolStatusError(.unavailable, e.message)
            case .cancelled: return SpoolStatusError(.cancelled, e.message)
            case .resourceExhausted: return SpoolStatusError(.resourceExhausted, e.message)
            case .recordTooLarge: return SpoolStatusError(.tooLarge, e.message)
            case .offsetOutOfRange: return SpoolStatusError(.outOfRange, e.message)
            case .unknownTopic, .unknownPartition: return SpoolStatusError(.notFound, e.message)
            case .topicExists: return SpoolStatusError(.alreadyExists, e.message)
            case .storageFailed: return SpoolStatusError(.internal, e.message)
            case .corrupt: return SpoolStatusError(.dataLoss, e.message)
            case .notLeaderOrFollower: return SpoolStatusError(.notLeaderOrFollower, e.message)
            case .notEnoughReplicas, .unknownLeaderEpoch: return SpoolStatusError(.unavailable, e.message)
            // The records are in the log; a retry is answered (idempotent producers: with the
            // original offsets) once replicated. ABORTED would read as a sequence gap.
            case .notEnoughReplicasAfterAppend: return SpoolStatusError(.unavailable, e.message)
            case .requestTimedOut: return SpoolStatusError(.deadlineExceeded, e.message)
            case .fencedLeaderEpoch: return SpoolStatusError(.failedPrecondition, e.message)
            }
        case let e as RecordsError:
            switch e.code {
            case .badCRC, .corruptCompressedData: return SpoolStatusError(.dataLoss, e.description)
            case .unsupportedCodec, .invalidTimestamp: return SpoolStatusError(.invalidArgument, e.description)
            case .batchTooLarge, .decompressedTooLarge: return SpoolStatusError(.tooLarge, e.description)
            default: return SpoolStatusError(.invalidArgument, "malformed record batch: \(e.description)")
            }
        case let e as ProducerStateError:
            switch e.code {
            // gRPC's ABORTED is "a sequencer check failure"; ALREADY_EXISTS: the records are stored.
            case .outOfOrderSequenceNumber: return SpoolStatusError(.aborted, e.message)
            case .duplicateSequenceNumber: return SpoolStatusError(.alreadyExists, e.message)
            case .invalidProducerEpoch: return SpoolStatusError(.failedPrecondition, e.message)
            case .invalidRecord: return SpoolStatusError(.invalidArgument, e.message)
            }
        case let e as GroupCoordinatorError:
            switch e.code {
            case .unknownTopicOrPartition, .groupIdNotFound: return SpoolStatusError(.notFound, e.message)
            case .invalidGroupId, .invalidSessionTimeout, .offsetMetadataTooLarge, .invalidCommitOffset, .inconsistentGroupProtocol:
                return SpoolStatusError(.invalidArgument, e.message)
            case .unknownMemberId, .illegalGeneration, .rebalanceInProgress, .memberIdRequired, .fencedInstanceId, .nonEmptyGroup,
                 .groupSubscribedToTopic:
                return SpoolStatusError(.failedPrecondition, e.message)
            case .groupMaxSizeReached: return SpoolStatusError(.resourceExhausted, e.message)
            case .coordinatorNotAvailable, .storageFailed, .coordinatorLoadInProgress: return SpoolStatusError(.unavailable, e.message)
            case .notCoordinator: return SpoolStatusError(.notLeaderOrFollower, e.message)
            }
        case let e as TransactionError:
            switch e.code {
            // Retriable, as Kafka's client treats them; the rest end the producer's transaction.
            case .concurrentTransactions, .storageFailed: return SpoolStatusError(.unavailable, e.message)
            case .invalidTransactionTimeout: return SpoolStatusError(.invalidArgument, e.message)
            case .unsupportedInCluster: return SpoolStatusError(.unimplemented, e.message)
            case .producerFenced, .invalidProducerEpoch, .invalidTxnState, .invalidProducerIdMapping:
                return SpoolStatusError(.failedPrecondition, e.message)
            }
        default:
            return SpoolStatusError(.internal, "\(error)")
        }
    }
}

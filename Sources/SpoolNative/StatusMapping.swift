import SpoolProtocol
import SpoolRecords
import SpoolStorage

/// Maps errors from the lower layers to protocol status codes.
enum StatusMapping {
    static func status(for error: Error) -> SpoolStatusError {
        switch error {
        case let e as SpoolStatusError:
            return e
        case let e as StorageError:
            switch e.code {
            case .offsetOutOfRange: return SpoolStatusError(.outOfRange, e.message)
            case .unknownTopic, .unknownPartition: return SpoolStatusError(.notFound, e.message)
            case .topicExists: return SpoolStatusError(.alreadyExists, e.message)
            case .invalidTopicName, .invalidConfig: return SpoolStatusError(.invalidArgument, e.message)
            case .recordTooLarge: return SpoolStatusError(.resourceExhausted, e.message)
            case .logFailed, .closed: return SpoolStatusError(.unavailable, e.message)
            case .io: return SpoolStatusError(.internal, e.message)
            case .corrupt: return SpoolStatusError(.dataLoss, e.message)
            }
        case let e as RecordsError:
            switch e.code {
            case .badCRC, .corruptCompressedData: return SpoolStatusError(.dataLoss, e.description)
            case .unsupportedCodec: return SpoolStatusError(.invalidArgument, e.description)
            case .decompressedTooLarge: return SpoolStatusError(.resourceExhausted, e.description)
            default: return SpoolStatusError(.invalidArgument, "malformed record batch: \(e.description)")
            }
        default:
            return SpoolStatusError(.internal, "\(error)")
        }
    }
}

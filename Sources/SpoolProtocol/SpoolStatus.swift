import NIOCore
import SwiftProtobuf

/// A call's failure as a gRPC-style status: what the broker sends in a STATUS
/// frame and what clients throw.
public struct SpoolStatusError: Error, Hashable, CustomStringConvertible, Sendable {
    public var code: Spool_V1_StatusCode
    public var message: String

    public init(_ code: Spool_V1_StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public init(_ status: Spool_V1_Status) {
        self.code = status.code
        self.message = status.message
    }

    public var status: Spool_V1_Status {
        var s = Spool_V1_Status()
        s.code = code
        s.message = message
        return s
    }

    public var description: String { "\(code.name): \(message)" }
}

extension Spool_V1_StatusCode {
    /// The upper-case gRPC name, e.g. OUT_OF_RANGE.
    public var name: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        case .tooLarge: "TOO_LARGE"
        case .notLeaderOrFollower: "NOT_LEADER_OR_FOLLOWER"
        case .UNRECOGNIZED(let n): "CODE_\(n)"
        }
    }
}

/// Protobuf encoding into and out of `ByteBuffer`s.
public enum ProtoCodec {
    /// Serialises `message` (one copy, into a fresh buffer).
    public static func encode<M: SwiftProtobuf.Message>(_ message: M, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        let bytes: [UInt8] = try message.serializedBytes()
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    /// Parses a message from the readable bytes of `buffer`.
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, from buffer: ByteBuffer) throws -> M {
        do {
            return try buffer.withUnsafeReadableBytes { try M(serializedBytes: Array($0)) }
        } catch {
            throw SpoolStatusError(.invalidArgument, "malformed \(M.protoMessageName) message: \(error)")
        }
    }
}

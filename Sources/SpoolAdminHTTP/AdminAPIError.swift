/// Why an admin API call failed; each code maps to one HTTP status.
public struct AdminAPIError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound = "NOT_FOUND"
        case invalidArgument = "INVALID_ARGUMENT"
        case unavailable = "UNAVAILABLE"
        case `internal` = "INTERNAL"

        var httpStatus: Int {
            switch self {
            case .notFound: 404
            case .invalidArgument: 400
            case .unavailable: 503
            case .internal: 500
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

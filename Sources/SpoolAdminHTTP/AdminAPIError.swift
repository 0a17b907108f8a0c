/// Why an admin API call failed; each code maps to one HTTP status.
public struct AdminAPIError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound = "NOT_FOUND"
        case invalidArgument = "INVALID_ARGUMENT"
        /// No (or wrong) credentials on a listener with `http.auth.enabled`.
        case unauthenticated = "UNAUTHENTICATED"
        /// The logged-in principal's ACLs do not allow the call (the authorizer is on).
        case forbidden = "FORBIDDEN"
        case unavailable = "UNAVAILABLE"
        case `internal` = "INTERNAL"

        var httpStatus: Int {
            switch self {
            case .notFound: 404
            case .invalidArgument: 400
            case .unauthenticated: 401
            case .forbidden: 403
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

import Hummingbird
import NIOCore
import SpoolBroker

/// The admin listener's request context: Hummingbird's core storage, the client's address,
/// and who the request acts as (set by ``AdminAuthMiddleware``; `User:ANONYMOUS` until then).
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's IP address ("?" when the channel does not know it).
    public let remoteHost: String
    /// The principal and host the API's ACL checks use.
    public var identity: AccessIdentity

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteHost = source.channel.remoteAddress?.ipAddress ?? "?"
        identity = .anonymous(host: remoteHost)
    }
}

/// Refuses requests without a valid login (401 with a basic-auth challenge) unless the
/// path is open, and sets the context's identity to the user logged in. Without
/// ``AdminHTTPAuth`` (`http.auth.enabled` off) every request passes as `User:ANONYMOUS`.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let auth: AdminHTTPAuth?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let auth, !auth.isOpen(request.uri.path) else { return try await next(request, context) }
        switch auth.authenticate(request.headers[.authorization], client: context.remoteHost) {
        case .user(let user):
            var context = context
            context.identity = AccessIdentity(principal: "User:\(user)", host: context.remoteHost)
            return try await next(request, context)
        case .missing:
            return Self.challenge(request, "this listener needs a login (HTTP basic with a Spool user, or a bearer token)")
        case .refused:
            return Self.challenge(request, "invalid credentials")
        }
    }

    /// 401 with `WWW-Authenticate: Basic realm="spool"`: JSON under /v1/, text elsewhere.
    static func challenge(_ request: Request, _ message: String) -> Response {
        var response = request.uri.path.hasPrefix("/v1/")
            ? AdminHTTPListener.json(ErrorView(code: AdminAPIError.Code.unauthenticated.rawValue, message: message), status: .unauthorized)
            : AdminHTTPListener.text(message + "\n", status: .unauthorized)
        response.headers[.wwwAuthenticate] = "Basic realm=\"\(AdminHTTPAuth.realm)\""
        return response
    }
}

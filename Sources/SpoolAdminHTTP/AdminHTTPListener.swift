import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SpoolBroker
import SpoolSecurity
import Synchronization

/// The admin HTTP listener (default 127.0.0.1:9644): `/metrics` in Prometheus text
/// format, `/health`, `/ready`, the JSON API under `/v1/`, and the web console at `/`.
///
/// A swift-service-lifecycle `Service`: `run()` serves until graceful shutdown. It can
/// start before the broker has opened its storage: until ``attach(_:)`` gives it the
/// API, `/health` answers, `/ready` says 503 and the JSON API says UNAVAILABLE.
///
/// Security (README, "Security"): with `tls` it speaks HTTPS only (TLS 1.2+, the same
/// settings type as the Kafka listeners); with `auth` every path but the open ones needs a
/// login (``AdminHTTPAuth``), and the API answers what the user's ACLs allow.
///
/// ```swift
/// let admin = try AdminHTTPListener(exporter: exporter, host: "127.0.0.1", port: 9644, logger: logger)
/// admin.attach(AdminAPI(broker: broker, listeners: { … }, ready: { … }))
/// let group = ServiceGroup(services: [admin, …], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public final class AdminHTTPListener: Service, Sendable {
    /// Records a `/records` call returns when no `limit` is given.
    public static let defaultRecordLimit = 50
    /// Log bytes a `/records` call reads when no `max_bytes` is given.
    public static let defaultRecordReadBytes = 1 << 20

    private let apiSlot: Mutex<AdminAPI?>
    public let exporter: PrometheusExporter?
    public let host: String
    public let port: Int
    let logger: Logger
    let console: ConsoleAssets
    /// TLS settings loaded and checked at init (nil: plain HTTP).
    let tlsConfiguration: TLSConfiguration?
    /// The login (nil: `http.auth.enabled` off, every request is `User:ANONYMOUS`).
    public let auth: AdminHTTPAuth?
    private let bound = BoundAddress()

    /// Throws if the console files are missing or the TLS certificate or key cannot be loaded.
    public init(api: AdminAPI? = nil, exporter: PrometheusExporter?, host: String, port: Int, tls: TLSSettings? = nil,
                auth: AdminHTTPAuth? = nil, logger: Logger) throws {
        self.apiSlot = Mutex(api)
        self.exporter = exporter
        self.host = host
        self.port = port
        self.logger = logger
        self.console = try ConsoleAssets.load()
        if let tls {
            _ = try tls.makeServerContext()  // the key matches the certificate: fail now, not at the first client
            tlsConfiguration = try tls.makeServerConfiguration()
        } else {
            tlsConfiguration = nil
        }
        self.auth = auth
    }

    /// `https` with TLS, else `http`.
    public var scheme: String { tlsConfiguration == nil ? "http" : "https" }

    /// Serves `api` from now on (once the broker is open).
    public func attach(_ api: AdminAPI) {
        apiSlot.withLock { $0 = api }
    }

    /// The API, or UNAVAILABLE while the broker is still opening its storage.
    func api() throws -> AdminAPI {
        guard let api = apiSlot.withLock({ $0 }) else {
            throw AdminAPIError(.unavailable, "the broker is starting: its logs are being opened and recovered")
        }
        return api
    }

    /// HOST:PORT if the socket is bound already.
    public var currentAddress: String? { bound.current }

    /// HOST:PORT once the socket is bound (waits for it).
    public func boundAddress() async -> String {
        await bound.wait()
    }

    public func run() async throws {
        let server: HTTPServerBuilder = try tlsConfiguration.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1()
        let app = Application(
            router: makeRouter(),
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "spool"),
            onServerRunning: { [bound, logger, tls = tlsConfiguration != nil, auth = auth != nil] channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
                logger.info("admin HTTP listener started", metadata: ["address": "\(address)", "tls": "\(tls)", "auth": "\(auth)"])
                bound.set(address)
            },
            logger: logger
        )
        try await app.run()
    }

    func makeRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        // First: Hummingbird applies a middleware to the routes added after it.
        router.middlewares.add(AdminAuthMiddleware(auth: auth))
        let exporter = self.exporter
        router.get("/health") { _, _ in Self.text("ok\n") }
        router.get("/ready") { _, _ in
            guard let api = try? self.api(), api.ready() else { return Self.text("not ready\n", status: .serviceUnavailable) }
            // Degraded still serves clients (200), but says which background task keeps failing.
            let degraded = api.degraded()
            return Self.text(degraded.isEmpty ? "ready\n" : "ready, degraded\n" + degraded.map { "degraded: \($0)\n" }.joined())
        }
        router.get("/metrics") { _, _ in
            guard let exporter else { return Self.text("metrics are off\n", status: .notFound) }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            let api = try? self.api()
            await api?.sample()
            let text = api.map { $0.metricsText(exporter) } ?? exporter.render()
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.get("/v1/session") { [auth] _, context in
            Self.answer { SessionView(principal: context.identity.principal, loginRequired: auth != nil) }
        }
        router.get("/v1/broker") { _, context in Self.answer { try self.api().brokerInfo(as: context.identity) } }
        router.get("/v1/topics") { _, context in Self.answer { try self.api().topics(as: context.identity) } }
        router.get("/v1/cluster") { _, context in Self.answer { try self.api().cluster(as: context.identity) } }
        router.get("/v1/topics/:topic") { _, context in
            Self.answer { try self.api().topic(context.parameters.require("topic"), as: context.identity) }
        }
        router.get("/v1/topics/:topic/partitions/:partition/records") { request, context in
            Self.answer {
                let query = request.uri.queryParameters
                guard let partition = context.parameters.get("partition", as: Int32.self) else {
                    throw AdminAPIError(.invalidArgument, "partition must be an integer")
                }
                func int(_ name: String) throws -> Int64? {
                    guard let text = query.get(name) else { return nil }
                    guard let value = Int64(text) else { throw AdminAPIError(.invalidArgument, "\(name) must be an integer (got '\(text)')") }
                    return value
                }
                return try self.api().records(
                    topic: try context.parameters.require("topic"), partition: partition, from: try int("from"),
                    limit: Int(try int("limit") ?? Int64(Self.defaultRecordLimit)),
                    maxBytes: Int(try int("max_bytes") ?? Int64(Self.defaultRecordReadBytes)), as: context.identity)
            }
        }
        router.get("/v1/groups") { _, context in Self.answer { try self.api().groups(as: context.identity) } }
        router.get("/v1/groups/:group") { _, context in
            Self.answer { try self.api().group(named: context.parameters.require("group"), as: context.identity) }
        }
        let console = self.console
        router.get("/") { _, _ in console.response(for: "index.html") }
        router.get("/console/:file") { _, context in
            console.response(for: context.parameters.get("file") ?? "")
        }
        return router
    }

    static func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Runs `body`; an ``AdminAPIError`` becomes a JSON error answer with its status.
    static func answer<T: Encodable>(_ body: () throws -> T) -> Response {
        do {
            return json(try body())
        } catch let error as AdminAPIError {
            return json(ErrorView(code: error.code.rawValue, message: error.message),
                        status: HTTPResponse.Status(code: error.code.httpStatus))
        } catch let error as HTTPError {
            return json(ErrorView(code: AdminAPIError.Code.invalidArgument.rawValue, message: error.body ?? "\(error.status)"),
                        status: error.status)
        } catch {
            return json(ErrorView(code: AdminAPIError.Code.internal.rawValue, message: "\(error)"), status: .internalServerError)
        }
    }
}

/// The bound address, once known; waiters are resumed when it is set.
final class BoundAddress: Sendable {
    private struct State {
        var address: String?
        var waiters: [CheckedContinuation<String, Never>] = []
    }
    private let state = Mutex(State())

    var current: String? { state.withLock { $0.address } }

    func set(_ address: String) {
        let waiters = state.withLock { s -> [CheckedContinuation<String, Never>] in
            s.address = address
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for waiter in waiters { waiter.resume(returning: address) }
    }

    func wait() async -> String {
        await withCheckedContinuation { continuation in
            let known = state.withLock { s -> String? in
                if let address = s.address { return address }
                s.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An etcd v3 client over etcd's JSON gateway (`/v3/...`) on HTTP/1.1 keep-alive connections.
///
/// Every call has a deadline (`EtcdClientConfiguration.requestTimeout` unless given) and fails
/// with an `EtcdError` whose `code` says what to do. Calls go to the endpoint that answered last;
/// on a refused or lost connection, an attempt timeout, or etcd saying it cannot serve
/// (no leader), an idempotent call moves on to the next endpoint until its deadline.
/// A transaction moves on only when the request certainly did not reach etcd: retrying a
/// compare-and-swap that may have applied would report a false conflict, so the caller gets
/// `.timeout`/`.unavailable` and re-reads instead.
///
/// ```swift
/// let client = try EtcdClient(configuration: EtcdClientConfiguration(endpoints: "http://127.0.0.1:2379"))
/// defer { client.shutdown() }
/// let put = try await client.put("/spool/c1/x", Array("v".utf8))
/// let txn = try await client.txn(compare: [.modRevision("/spool/c1/x", .equal, put.revision)],
///                                success: [.put("/spool/c1/x", Array("w".utf8))], failure: [.range(.key("/spool/c1/x"))])
/// ```
public final class EtcdClient: Sendable {
    public let configuration: EtcdClientConfiguration
    private let group: any EventLoopGroup
    private let pools: [EndpointPool]
    private let preferred = NIOLockedValueBox(0)
    private let isShutdown = NIOLockedValueBox(false)

    /// Which calls may be repeated on another endpoint after they may have reached etcd.
    enum Retry { case anywhere, unsentOnly }

    public init(configuration: EtcdClientConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard !configuration.endpoints.isEmpty else { throw EtcdError(.invalidArgument, "no etcd endpoint") }
        self.configuration = configuration
        self.group = eventLoopGroup
        self.pools = configuration.endpoints.map { EndpointPool(endpoint: $0, idleMax: configuration.idleConnectionsPerEndpointMax) }
    }

    /// Closes idle connections; later calls fail with `.cancelled`. Watches end when their
    /// sequences are dropped or cancelled.
    public func shutdown() {
        isShutdown.withLockedValue { $0 = true }
        for pool in pools { pool.closeAll() }
    }

    /// The endpoint calls go to first (the last one that answered).
    public var currentEndpoint: EtcdEndpoint { pools[preferred.withLockedValue { $0 } % pools.count].endpoint }

    // MARK: KV

    /// Reads `keys` (linearizable unless `serializable`), at `revision` if non-zero, at most
    /// `limit` keys if non-zero.
    public func range(_ keys: EtcdKeyRange, limit: Int64 = 0, revision: Int64 = 0, serializable: Bool = false,
                      timeout: Duration? = nil) async throws -> EtcdRangeResult {
        let (key, end) = keys.wire
        let request = GW.RangeRequest(
            key: key, range_end: end, limit: limit == 0 ? nil : String(limit), revision: revision == 0 ? nil : String(revision),
            serializable: serializable ? true : nil)
        let response = try await call("/v3/kv/range", request, as: GW.RangeResponse.self, retry: .anywhere, timeout: timeout)
        return response.model
    }

    /// Reads one key; nil when it does not exist.
    public func get(_ key: String, timeout: Duration? = nil) async throws -> EtcdKeyValue? {
        try await range(.key(key), timeout: timeout).kvs.first
    }

    /// Writes `key` (attached to `lease` when non-zero). Repeated on another endpoint when an
    /// attempt failed: the same value written twice is still that value (at a later revision).
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0, previous: Bool = false,
                    timeout: Duration? = nil) async throws -> EtcdPutResult {
        let request = GW.PutRequest(
            key: GW.b64(key), value: GW.b64(value), lease: lease == 0 ? nil : String(lease), prev_kv: previous ? true : nil)
        let response = try await call("/v3/kv/put", request, as: GW.PutResponse.self, retry: .anywhere, timeout: timeout, isLeaseCall: lease != 0)
        return response.model
    }

    /// Deletes `keys`.
    @discardableResult
    public func delete(_ keys: EtcdKeyRange, previous: Bool = false, timeout: Duration? = nil) async throws -> EtcdDeleteResult {
        let (key, end) = keys.wire
        let request = GW.DeleteRangeRequest(key: key, range_end: end, prev_kv: previous ? true : nil)
        let response = try await call("/v3/kv/deleterange", request, as: GW.DeleteRangeResponse.self, retry: .anywhere, timeout: timeout)
        return response.model
    }

    /// Runs `success` if every compare holds, else `failure`, atomically. A failed compare is not
    /// an error (`succeeded` is false; call `requireSucceeded()` to make it one).
    public func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = [],
                    timeout: Duration? = nil) async throws -> EtcdTxnResult {
        let request = GW.TxnRequest(compare: compare.map(\.wire), success: success.map(\.wire), failure: failure.map(\.wire))
        let response = try await call("/v3/kv/txn", request, as: GW.TxnResponse.self, retry: .unsentOnly, timeout: timeout,
                                      isLeaseCall: (success + failure).contains { if case .put(_, _, let l) = $0 { l != 0 } else { false } })
        let results: [EtcdOperationResult] = (response.responses ?? []).compactMap { op in
            if let r = op.response_range { return .range(r.model) }
            if let p = op.response_put { return .put(p.model) }
            if let d = op.response_delete_range { return .delete(d.model) }
            return nil
        }
        return EtcdTxnResult(succeeded: response.succeeded ?? false, revision: GW.int(response.header?.revision), responses: results)
    }

    // MARK: Leases

    /// Grants a lease of `ttlSeconds` (etcd raises a TTL below its minimum, 2 s with a 1 s
    /// election timeout). `id` 0 lets etcd choose.
    public func leaseGrant(ttlSeconds: Int64, id: Int64 = 0, timeout: Duration? = nil) async throws -> EtcdLease {
        let response = try await call("/v3/lease/grant", GW.LeaseGrantRequest(TTL: String(ttlSeconds), ID: String(id)),
                                      as: GW.LeaseGrantResponse.self, retry: .anywhere, timeout: timeout, isLeaseCall: true)
        if let error = response.error, !error.isEmpty { throw EtcdError(.server(2), error, endpoint: currentEndpoint.description) }
        let granted = GW.int(response.ID)
        guard granted != 0 else { throw EtcdError(.invalidResponse, "lease grant answered no ID") }
        return EtcdLease(id: granted, ttlSeconds: GW.int(response.TTL), revision: GW.int(response.header?.revision))
    }

    /// Renews a lease once; returns its TTL in seconds. Throws `.leaseNotFound` when the lease is
    /// gone (expired or revoked).
    public func leaseKeepAliveOnce(_ id: Int64, timeout: Duration? = nil) async throws -> Int64 {
        let line = try await call("/v3/lease/keepalive", GW.LeaseIDRequest(ID: String(id)),
                                  as: GW.StreamLine<GW.LeaseKeepAliveResponse>.self, retry: .anywhere, timeout: timeout,
                                  isLeaseCall: true, firstLineOnly: true)
        if let error = line.error {
            throw EtcdError.fromGateway(grpcCode: error.grpc_code ?? 2, message: error.message ?? "", endpoint: currentEndpoint.description, isLeaseCall: true)
        }
        let ttl = GW.int(line.result?.TTL)
        guard ttl > 0 else { throw EtcdError(.leaseNotFound, "lease \(id) not found", endpoint: currentEndpoint.description) }
        return ttl
    }

    /// Revokes a lease, deleting every key attached to it. `.leaseNotFound` if it is already gone.
    public func leaseRevoke(_ id: Int64, timeout: Duration? = nil) async throws {
        _ = try await call("/v3/lease/revoke", GW.LeaseIDRequest(ID: String(id)), as: GW.LeaseRevokeResponse.self,
                           retry: .anywhere, timeout: timeout, isLeaseCall: true)
    }

    // MARK: Watch

    /// Watches `keys` from `fromRevision` (0: from now), on its own connection. Returns once etcd
    /// created the watch (bounded by `timeout`, trying endpoints in turn). See `EtcdWatch`.
    public func watch(_ keys: EtcdKeyRange, fromRevision: Int64 = 0, previousValues: Bool = false,
                      progressNotify: Bool = false, timeout: Duration? = nil) async throws -> EtcdWatch {
        try checkOpen()
        let (key, end) = keys.wire
        let request = GW.WatchRequest(create_request: GW.WatchCreateRequest(
            key: key, range_end: end, start_revision: fromRevision == 0 ? nil : String(fromRevision),
            progress_notify: progressNotify ? true : nil, prev_kv: previousValues ? true : nil))
        let json = try JSONEncoder().encode(request)
        return try await withEndpoints(retry: .anywhere, timeout: timeout) { pool, deadline in
            let connection = try await HTTPConnection.connect(
                to: pool.endpoint, group: self.group, timeout: self.connectTimeout(deadline))
            let created = connection.channel.eventLoop.makePromise(of: Int64.self)
            let (stream, continuation) = AsyncThrowingStream<EtcdWatchResponse, any Error>.makeStream()
            continuation.onTermination = { _ in connection.close() }
            let sink = WatchStreamSink(
                endpoint: pool.endpoint.description, lineBytesMax: self.configuration.watchLineBytesMax,
                created: created, continuation: continuation)
            connection.stream(path: "/v3/watch", body: ByteBuffer(bytes: json), headDeadline: deadline, sink: sink)
            // The head deadline covers the answer's head; the created message must come by the deadline too.
            let timer = connection.channel.eventLoop.scheduleTask(deadline: deadline) {
                created.fail(HTTPAttemptError(error: EtcdError(.timeout, "watch not created before the deadline", endpoint: pool.endpoint.description), sent: true))
            }
            do {
                let revision = try await withTaskCancellationHandler {
                    try await created.futureResult.get()
                } onCancel: {
                    connection.close()
                }
                timer.cancel()
                self.probe(watchOf: keys, on: pool, connection: connection, sink: sink)
                return EtcdWatch(createdRevision: revision, stream: stream, connection: connection, sink: sink)
            } catch let error as EtcdError {
                timer.cancel()
                connection.close()
                // etcd's own refusal (compacted, bad request) is the answer, not a reason to try elsewhere.
                if error.code == .unavailable || error.code == .timeout { throw HTTPAttemptError(error: error, sent: true) }
                throw error
            } catch {
                timer.cancel()
                connection.close()
                throw error
            }
        }
    }

    /// Every `watchProbeInterval` while the watch's connection is open, a linearizable read of
    /// one key of the watched range on the watch's own member, bounded by `attemptTimeout`. A
    /// member that cannot answer it (unreachable, or without a quorum: its watch stays silent
    /// while the others move on) ends the watch with `.unavailable`, and the next calls start on
    /// another endpoint.
    private func probe(watchOf keys: EtcdKeyRange, on pool: EndpointPool, connection: HTTPConnection, sink: WatchStreamSink) {
        let interval = configuration.watchProbeInterval
        guard interval > .zero else { return }
        let (key, end) = keys.wire
        guard let body = try? JSONEncoder().encode(GW.RangeRequest(key: key, range_end: end, limit: "1", keys_only: true, count_only: true)) else { return }
        let attemptTimeout = TimeAmount.nanoseconds(configuration.attemptTimeout.nanosecondsClamped)
        let endpoint = pool.endpoint.description
        Task { [self] in
            while connection.isActive {
                try? await Task.sleep(for: interval)
                guard connection.isActive, !isShutdown.withLockedValue({ $0 }) else { return }
                let deadline = NIODeadline.now() + attemptTimeout
                var failure: String?
                do {
                    let answer = try await pool.unary(
                        path: "/v3/kv/range", body: ByteBuffer(bytes: body), deadline: deadline,
                        connectTimeout: connectTimeout(deadline), bodyBytesMax: 1 << 20, group: group)
                    if answer.status != .ok { failure = "HTTP \(answer.status.code)" }
                } catch let error as HTTPAttemptError {
                    failure = error.error.message
                } catch {
                    failure = "\(error)"
                }
                guard let failure, connection.isActive else { continue }
                if let index = pools.firstIndex(where: { $0 === pool }) {
                    let count = pools.count
                    preferred.withLockedValue { if $0 == index { $0 = (index + 1) % count } }
                }
                let error = EtcdError(.unavailable, "the watch's member does not serve a linearizable read: \(failure)", endpoint: endpoint)
                connection.channel.eventLoop.execute { sink.fail(error) }
                connection.close()
                return
            }
        }
    }

    // MARK: Calls

    private func checkOpen() throws {
        if isShutdown.withLockedValue({ $0 }) { throw EtcdError(.cancelled, "etcd client is shut down") }
    }

    private func connectTimeout(_ deadline: NIODeadline) -> TimeAmount {
        max(.milliseconds(1), min(.nanoseconds(configuration.connectTimeout.nanosecondsClamped), deadline - .now()))
    }

    private func call<Request: Encodable, Response: Decodable>(
        _ path: String, _ request: Request, as: Response.Type, retry: Retry, timeout: Duration?,
        isLeaseCall: Bool = false, firstLineOnly: Bool = false
    ) async throws -> Response {
        try checkOpen()
        let json = try JSONEncoder().encode(request)
        let startedAt = ContinuousClock.now
        var succeeded = false
        defer {
            if let observer = configuration.requestObserver {
                let parts = path.split(separator: "/")
                let operation = parts.count >= 3 && parts[1] == "lease" ? "lease_\(parts[2])" : String(parts.last ?? "")
                observer(operation, ContinuousClock.now - startedAt, succeeded)
            }
        }
        let response: Response = try await withEndpoints(retry: retry, timeout: timeout) { pool, deadline in
            let answer = try await pool.unary(
                path: path, body: ByteBuffer(bytes: json), deadline: deadline,
                connectTimeout: self.connectTimeout(deadline), bodyBytesMax: self.configuration.answerBytesMax, group: self.group)
            var body = Data(answer.body.readableBytesView)
            guard answer.status == .ok else {
                let detail = try? JSONDecoder().decode(GW.UnaryError.self, from: body)
                let error = EtcdError.fromGateway(
                    grpcCode: detail?.code ?? 2, message: detail?.message ?? "HTTP \(answer.status.code)",
                    endpoint: pool.endpoint.description, isLeaseCall: isLeaseCall)
                // etcd could not serve here (no leader, request timed out inside etcd); another
                // member may. Only an idempotent call may try it: this one may have applied.
                if error.code == .unavailable { throw HTTPAttemptError(error: error, sent: true) }
                throw error
            }
            if firstLineOnly, let newline = body.firstIndex(of: UInt8(ascii: "\n")) { body = body[..<newline] }
            do {
                return try JSONDecoder().decode(Response.self, from: body)
            } catch {
                throw EtcdError(.invalidResponse, "\(path) answered unexpected JSON: \(error)", endpoint: pool.endpoint.description)
            }
        }
        succeeded = true
        return response
    }

    /// Runs `attempt` on the endpoints in turn, from the preferred one, until it succeeds, throws
    /// an `EtcdError` (etcd's answer), or the deadline passes. An `HTTPAttemptError` moves on to
    /// the next endpoint when `retry` allows it; each full round of failures backs off.
    private func withEndpoints<T>(
        retry: Retry, timeout: Duration?, _ attempt: (EndpointPool, NIODeadline) async throws -> T
    ) async throws -> T {
        let callDeadline = NIODeadline.now() + .nanoseconds((timeout ?? configuration.requestTimeout).nanosecondsClamped)
        let attemptTimeout = TimeAmount.nanoseconds(configuration.attemptTimeout.nanosecondsClamped)
        let first = preferred.withLockedValue { $0 }
        var lastError = EtcdError(.timeout, "no attempt made before the deadline")
        var backoff = TimeAmount.nanoseconds(configuration.retryBackoff.nanosecondsClamped)
        let backoffMax = TimeAmount.nanoseconds(configuration.retryBackoffMax.nanosecondsClamped)
        // Bounded by the deadline; the count bound only guards against a zero backoff.
        let attemptsMax = 10_000
        for number in 0..<attemptsMax {
            if number > 0 && number % pools.count == 0 {
                let pause = min(backoff, callDeadline - .now())
                if pause > .zero {
                    do { try await Task.sleep(nanoseconds: UInt64(pause.nanoseconds)) } catch { throw EtcdError(.cancelled, "call cancelled") }
                }
                backoff = min(backoffMax, backoff * 2)
            }
            try checkOpen()
            if Task.isCancelled { throw EtcdError(.cancelled, "call cancelled") }
            let now = NIODeadline.now()
            guard now < callDeadline else { break }
            let index = (first + number) % pools.count
            let deadline = retry == .anywhere ? min(callDeadline, now + attemptTimeout) : callDeadline
            do {
                let value = try await attempt(pools[index], deadline)
                preferred.withLockedValue { $0 = index }
                return value
            } catch let failure as HTTPAttemptError {
                if Task.isCancelled { throw EtcdError(.cancelled, "call cancelled") }
                // The next call starts elsewhere, even one that may not move on by itself (a txn).
                let count = pools.count
                preferred.withLockedValue { if $0 == index { $0 = (index + 1) % count } }
                lastError = failure.error
                if failure.sent && retry == .unsentOnly { throw failure.error }
            }
        }
        throw lastError
    }
}

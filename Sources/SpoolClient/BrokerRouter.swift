import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolProtocol

/// Where a client's calls go in a cluster: bootstraps from any of a list of brokers, learns
/// the live brokers and each partition's leader with the native Metadata call, and keeps one
/// `SpoolConnection` per broker (opened on first use, with the bootstrap connection's TLS,
/// SASL and timeouts). Producers, consumers and `SpoolAdmin` send each partition's data
/// calls (produce, fetch, list offsets) to `leader(of:)`, and group calls to the group's
/// coordinator (`groupCall`, BrokerRouter+Coordinators.swift); topic and transaction calls
/// stay on `bootstrap`, the broker asked first.
///
/// When a broker answers NOT_LEADER_OR_FOLLOWER or a leader's connection breaks, callers
/// `requestRefresh()` (or `await refresh()`): one Metadata call at a time, never sooner than
/// `refreshBackoffMillis` after the previous one, doubling after failures up to
/// `refreshBackoffMaxMillis`. A single broker (Metadata says `clustered` false, or does not
/// know the call) leads everything on `bootstrap`.
///
/// ```swift
/// let router = try await BrokerRouter.connect(["10.0.0.1:9292", "10.0.0.2:9292"].map { ... })
/// let producer = SpoolProducer(router: router, config: ProducerConfig())
/// ```
public final class BrokerRouter: Sendable {
    /// First pause between Metadata calls (Kafka: `retry.backoff.ms`, 100 ms).
    public static let refreshBackoffMillis = 100
    /// Longest pause between Metadata calls after failures (Kafka: `retry.backoff.max.ms`, 1 s).
    public static let refreshBackoffMaxMillis = 1_000
    /// Bound on one Metadata attempt at one broker (the next broker is asked after it).
    public static let metadataAttemptMillisMax = 5_000
    /// Most brokers a router keeps connections to.
    public static let connectionsMax = 256

    /// The broker the router bootstrapped from: topic and transaction calls go here.
    public let bootstrap: SpoolConnection
    private let ownsBootstrap: Bool
    private let ownsGroup: Bool
    /// The other bootstrap addresses, asked when no known broker answers.
    private let seeds: [ConnectionConfig]
    let state: NIOLockedValueBox<State>

    struct State {
        var metadata: ClusterMetadata?
        /// Connections by `HOST:PORT` (the bootstrap one under its address and the one it answered as).
        var connections: [String: SpoolConnection] = [:]
        /// Topics whose partitions every refresh asks for.
        var topics: Set<String> = []
        /// Each group's coordinator as FindCoordinator last told it: `HOST:PORT` of its native listener.
        var coordinators: [String: String] = [:]
        var inFlight: Task<ClusterMetadata, Error>?
        var lastAttempt: ContinuousClock.Instant?
        var failures = 0
        var refreshes = 0
        var closed = false
    }

    /// Routes over an existing connection (not closed by `close()`: it is the caller's).
    public convenience init(connection: SpoolConnection) {
        self.init(bootstrap: connection, owns: false, ownsGroup: false, seeds: [])
    }

    private init(bootstrap: SpoolConnection, owns: Bool, ownsGroup: Bool, seeds: [ConnectionConfig]) {
        self.bootstrap = bootstrap
        self.ownsBootstrap = owns
        self.ownsGroup = ownsGroup
        self.seeds = seeds
        var s = State()
        s.connections[bootstrap.config.address] = bootstrap
        self.state = NIOLockedValueBox(s)
    }

    /// Connects to the first of `configs` that answers (in order) and learns the cluster
    /// from it. Fails with the last broker's error when none answers.
    public static func connect(_ configs: [ConnectionConfig], group: EventLoopGroup? = nil) async throws -> BrokerRouter {
        guard !configs.isEmpty else { throw SpoolClientError(.invalidUse, "no broker to bootstrap from") }
        let ownsGroup = group == nil
        let group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var last: Error?
        for (i, config) in configs.enumerated() {
            do {
                let connection = try await SpoolConnection.connect(config, group: group)
                let router = BrokerRouter(bootstrap: connection, owns: true, ownsGroup: ownsGroup, seeds: Array(configs[..<i] + configs[(i + 1)...]))
                _ = try? await router.refresh()
                return router
            } catch {
                last = error
            }
        }
        if ownsGroup { try? await group.shutdownGracefully() }
        throw last!
    }

    /// The latest Metadata answer (nil before the first).
    public var metadata: ClusterMetadata? { state.withLockedValue { $0.metadata } }

    /// Metadata calls made so far (for tests and metrics).
    public var refreshCount: Int { state.withLockedValue { $0.refreshes } }

    /// Asks for `topics` in every later refresh too.
    public func track(_ topics: [String]) {
        state.withLockedValue { $0.topics.formUnion(topics) }
    }

    // MARK: Routing

    /// Where `tp`'s data calls go now: its leader and a connection to it (which may be down:
    /// it reconnects on its next async call). Nil in a cluster while the leader is not known
    /// or there is none: `refresh()` and ask again. A single broker leads everything.
    public func leader(of tp: TopicPartition) -> (node: Int32, connection: SpoolConnection)? {
        state.withLockedValue { s in
            guard let m = s.metadata, m.clustered else { return (s.metadata?.answeredBy ?? -1, bootstrap) }
            guard let node = m.leader(of: tp), let address = m.brokers[node] else { return nil }
            return (node, Self.connection(to: address, in: &s, template: bootstrap))
        }
    }

    /// The connection to `tp`'s leader, refreshing metadata first when the leader is not
    /// known, for at most `timeoutMillis` (default: the bootstrap's request timeout).
    public func connection(toLeaderOf tp: TopicPartition, timeoutMillis: Int? = nil) async throws -> SpoolConnection {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMillis ?? bootstrap.config.requestTimeoutMillis)
        track([tp.topic])
        while true {
            if let (_, connection) = leader(of: tp) { return connection }
            guard ContinuousClock.now < deadline else {
                throw SpoolStatusError(.unavailable, "no leader of \(tp) is known (the cluster is electing one, or the topic is gone)")
            }
            _ = try? await refresh()
        }
    }

    /// The connection to broker `node` (nil when no live broker has that id).
    public func connection(toNode node: Int32) -> SpoolConnection? {
        state.withLockedValue { s in
            guard let m = s.metadata, m.clustered else { return bootstrap }
            guard let address = m.brokers[node] else { return nil }
            return Self.connection(to: address, in: &s, template: bootstrap)
        }
    }

    static func connection(to address: String, in s: inout State, template: SpoolConnection) -> SpoolConnection {
        if let known = s.connections[address] { return known }
        guard let (host, port) = splitHostPort(address), s.connections.count < connectionsMax else { return template }
        var config = template.config
        config.host = host
        config.port = port
        let connection = SpoolConnection.deferred(config, group: template.group)
        s.connections[address] = connection
        return connection
    }

    // MARK: Refreshing

    /// Starts a refresh in the background (at most one at a time, paced by the backoff).
    public func requestRefresh() {
        Task { _ = try? await self.refresh() }
    }

    /// Asks a broker for the tracked topics (and `topics`), after the backoff since the last
    /// attempt; joins the refresh in flight if there is one. The brokers asked, in order: the
    /// connected ones (bootstrap first), then the others known, then the bootstrap list.
    @discardableResult
    public func refresh(topics: [String] = []) async throws -> ClusterMetadata {
        track(topics)
        enum Step { case join(Task<ClusterMetadata, Error>), run(Task<ClusterMetadata, Error>) }
        let step = try state.withLockedValue { s -> Step in
            if s.closed { throw SpoolClientError(.closed, "the router was closed") }
            if let task = s.inFlight { return .join(task) }
            let pause = Self.backoffMillis(failures: s.failures)
            let due = s.lastAttempt.map { $0 + .milliseconds(pause) }
            let wanted = Array(s.topics).sorted()
            let task = Task { () async throws -> ClusterMetadata in
                if let due, due > .now { try await Task.sleep(until: due) }
                return try await self.ask(wanted)
            }
            s.inFlight = task
            return .run(task)
        }
        switch step {
        case .join(let task):
            return try await task.value
        case .run(let task):
            let result = await task.result
            state.withLockedValue { s in
                s.inFlight = nil
                s.lastAttempt = .now
                s.refreshes += 1
                switch result {
                case .success(let m):
                    s.failures = 0
                    s.metadata = s.metadata.map { $0.merged(with: m) } ?? m
                case .failure:
                    s.failures += 1
                }
            }
            return try result.get()
        }
    }

    /// The pause before the next Metadata call after `failures` failed ones in a row.
    static func backoffMillis(failures: Int) -> Int {
        min(refreshBackoffMaxMillis, refreshBackoffMillis << min(failures, 10))
    }

    /// The brokers to ask a question any broker answers, in order: the connected ones
    /// (bootstrap first), then the others known, then the bootstrap list.
    func candidates() -> [SpoolConnection] {
        state.withLockedValue { s -> [SpoolConnection] in
            var seen = Set<ObjectIdentifier>()
            var out: [SpoolConnection] = []
            func add(_ c: SpoolConnection) { if seen.insert(ObjectIdentifier(c)).inserted { out.append(c) } }
            if bootstrap.isConnected { add(bootstrap) }
            for c in s.connections.values.sorted(by: { $0.config.address < $1.config.address }) where c.isConnected { add(c) }
            add(bootstrap)
            for address in (s.metadata?.brokers.values.sorted() ?? []) { add(Self.connection(to: address, in: &s, template: bootstrap)) }
            for seed in seeds { add(Self.connection(to: seed.address, in: &s, template: bootstrap)) }
            return out
        }
    }

    /// One Metadata call, broker after broker until one answers.
    private func ask(_ topics: [String]) async throws -> ClusterMetadata {
        let candidates = candidates()
        var request = Spool_V1_MetadataRequest()
        request.topics = topics
        var last: Error = SpoolClientError(.connectionRefused, "no broker to ask for metadata")
        for connection in candidates {
            do {
                let timeout = min(connection.config.requestTimeoutMillis, Self.metadataAttemptMillisMax)
                let response: Spool_V1_MetadataResponse = try await connection.call(.metadata, request, timeoutMillis: timeout)
                var m = ClusterMetadata(response)
                // Asked over this connection: whatever address the broker registered, this one reaches it.
                if let advertised = m.brokers[m.answeredBy] {
                    state.withLockedValue { s in
                        if s.connections[advertised] == nil { s.connections[advertised] = connection }
                    }
                } else if !m.clustered {
                    m.brokers[m.answeredBy] = connection.config.address
                }
                return m
            } catch let error as SpoolStatusError where error.code == .unimplemented {
                // A broker older than the call: a single broker, on the connection asked.
                return ClusterMetadata(answeredBy: -1, clustered: false, brokers: [-1: connection.config.address])
            } catch {
                last = error
            }
        }
        throw last
    }

    /// Closes every connection the router opened (and the bootstrap one if `connect` made it).
    public func close() async {
        let connections = state.withLockedValue { s -> [SpoolConnection] in
            s.closed = true
            s.inFlight?.cancel()
            return Array(s.connections.values)
        }
        var closed = Set<ObjectIdentifier>()
        for c in connections where c !== bootstrap && closed.insert(ObjectIdentifier(c)).inserted { await c.close() }
        if ownsBootstrap { await bootstrap.close() }
        if ownsGroup { try? await bootstrap.group.shutdownGracefully() }
    }
}

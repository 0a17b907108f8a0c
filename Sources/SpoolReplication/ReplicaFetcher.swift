import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SpoolBroker
import SpoolKafka
import SpoolRecords

/// The follower side of replication: for every partition this broker follows, fetch
/// from its leader continuously and append what comes, as Kafka's replica fetcher does.
///
/// One fetcher (one connection, one request at a time) per leader broker. Each round is a
/// Kafka Fetch v12 with `ReplicaId` = this node, each partition's log end as fetch offset
/// and its last batch's epoch as `LastFetchedEpoch`, long-polled (`fetchWaitMillis`).
/// A `DivergingEpoch` answer truncates the log to where the leader's log agrees —
/// min(the leader's end of that epoch, this log's end of it), never to the local high
/// watermark — before the next fetch. The follower's HW = min(leader's HW, its log end).
/// Errors back off (`backoffMinMillis` doubling to `backoffMaxMillis`). A partition is
/// dropped when `applyReplicaState` makes it anything but a follower of that leader.
/// The leader is dialled on its listener for `security.securityProtocol`, over TLS and
/// logged in with SASL when that protocol says so; a refused login or fetch is logged as a
/// warning (once until it changes), a plain connection failure at debug level.
///
/// ```swift
/// let fetchers = ReplicaFetcherManager(broker: broker, nodeId: 2, delegate: cluster)
/// fetchers.start()   // before the cluster layer applies states
/// ```
public final class ReplicaFetcherManager: Sendable {
    /// Kafka's replica fetch defaults (CLUSTER.md).
    public static let fetchWaitMillis: Int32 = 500
    public static let partitionMaxBytes: Int32 = 1 << 20
    public static let responseMaxBytes: Int32 = 10 << 20
    static let backoffMinMillis: Int64 = 50
    static let backoffMaxMillis: Int64 = 1000

    let broker: Broker
    let nodeId: Int32
    /// Where leaders' addresses come from (read at every connect).
    let delegate: @Sendable () -> (any ReplicationDelegate)?
    let group: EventLoopGroup
    let logger: Logger
    /// How followers reach and log in to leaders.
    let security: InterBrokerSecurity
    private let fetchers = NIOLockedValueBox<[Int32: LeaderFetcher]>([:])
    private let pausedBox = NIOLockedValueBox(false)

    /// While true, no fetch is sent and answers in flight are dropped (tests: a follower
    /// that stops fetching, as SIGSTOP would make it).
    public var paused: Bool {
        get { pausedBox.withLockedValue { $0 } }
        set { pausedBox.withLockedValue { $0 = newValue } }
    }

    public convenience init(broker: Broker, nodeId: Int32, delegate: any ReplicationDelegate, security: InterBrokerSecurity = .plaintext,
                            group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "spool.replication")) {
        self.init(broker: broker, nodeId: nodeId, group: group, logger: logger, security: security, delegate: { delegate })
    }

    /// A fetcher that asks `broker.replicationDelegate` (set by the cluster layer, maybe
    /// later than this is made) for the leaders' addresses.
    public convenience init(broker: Broker, nodeId: Int32, security: InterBrokerSecurity = .plaintext,
                            group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "spool.replication")) {
        self.init(broker: broker, nodeId: nodeId, group: group, logger: logger, security: security,
                  delegate: { [weak broker] in broker?.replicationDelegate })
    }

    init(broker: Broker, nodeId: Int32, group: EventLoopGroup, logger: Logger, security: InterBrokerSecurity,
         delegate: @escaping @Sendable () -> (any ReplicationDelegate)?) {
        self.broker = broker
        self.nodeId = nodeId
        self.delegate = delegate
        self.group = group
        self.logger = logger
        self.security = security
    }

    /// Follows the broker's role changes from now on.
    public func start() {
        broker.replicaRoleObserver = { [weak self] tp, role in self?.roleChanged(tp, role) }
    }

    /// Stops every fetcher (at shutdown).
    public func stop() {
        broker.replicaRoleObserver = nil
        let all = fetchers.withLockedValue { f -> [LeaderFetcher] in
            defer { f.removeAll() }
            return Array(f.values)
        }
        for f in all { f.stop() }
    }

    /// Partitions fetched now, by leader (for tests and metrics).
    public var fetching: [Int32: [TopicPartition]] {
        fetchers.withLockedValue { $0.mapValues { Array($0.partitions.withLockedValue { $0.keys }) } }
    }

    func roleChanged(_ tp: TopicPartition, _ role: ReplicaRole) {
        var stopped: [LeaderFetcher] = []
        fetchers.withLockedValue { all in
            for (leader, fetcher) in all {
                if case .follower(let l, _) = role, l == leader { continue }
                if fetcher.remove(tp) {
                    all.removeValue(forKey: leader)
                    stopped.append(fetcher)
                }
            }
            if case .follower(let leader, let epoch) = role {
                if let fetcher = all[leader] {
                    fetcher.add(tp, epoch: epoch)
                } else {
                    // The partition first: a fetcher with none stops at once.
                    let fetcher = LeaderFetcher(manager: self, leader: leader)
                    fetcher.add(tp, epoch: epoch)
                    all[leader] = fetcher
                    fetcher.start()
                }
            }
        }
        for f in stopped { f.stop() }
    }
}

/// Fetches every partition one leader leads for this broker, over one connection.
final class LeaderFetcher: Sendable {
    let leader: Int32
    /// Strong: the fetch task can outlive `stop()` by a fetch in flight, and the manager with
    /// it (an unowned reference would then abort the broker at shutdown). The manager drops its
    /// fetchers when they stop, so no cycle outlives them.
    let manager: ReplicaFetcherManager
    /// Partition → the leader epoch it is followed at.
    let partitions = NIOLockedValueBox<[TopicPartition: Int32]>([:])
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(manager: ReplicaFetcherManager, leader: Int32) {
        self.manager = manager
        self.leader = leader
    }

    func add(_ tp: TopicPartition, epoch: Int32) { partitions.withLockedValue { $0[tp] = epoch } }

    /// Removes `tp`; true when no partition is left.
    func remove(_ tp: TopicPartition) -> Bool {
        partitions.withLockedValue { $0.removeValue(forKey: tp); return $0.isEmpty }
    }

    func start() {
        task.withLockedValue { $0 = Task { [self] in await run() } }
    }

    func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    private func run() async {
        var connection: KafkaClientConnection?
        var backoff = ReplicaFetcherManager.backoffMinMillis
        var lastWarning: String?
        let security = manager.security
        let clientId = "spool-replica-\(manager.nodeId)"
        defer { connection?.close() }
        while !Task.isCancelled {
            do {
                let wanted = partitions.withLockedValue { $0 }
                if wanted.isEmpty { return }
                if manager.paused {
                    try? await Task.sleep(for: .milliseconds(ReplicaFetcherManager.backoffMinMillis))
                    continue
                }
                if connection == nil || !(connection!.channel.isActive) {
                    let proto = security.securityProtocol.rawValue
                    guard let address = manager.delegate()?.kafkaAddress(of: leader, securityProtocol: proto) else {
                        throw ReplicationError("broker \(leader) is not registered with a \(proto) Kafka listener")
                    }
                    connection = try await KafkaClientConnection.connect(host: address.host, port: address.port, group: manager.group,
                                                                         security: security, clientId: clientId)
                }
                let progressed = try await fetchOnce(wanted, over: connection!, clientId: clientId)
                backoff = ReplicaFetcherManager.backoffMinMillis
                lastWarning = nil
                if !progressed { try? await Task.sleep(for: .milliseconds(ReplicaFetcherManager.backoffMinMillis)) }
            } catch {
                if Task.isCancelled { return }
                let message = "fetch from broker \(leader) failed: \(error); again in \(backoff) ms"
                if let refusal = error as? ReplicationError, refusal.code != .connection {
                    // A refused login or fetch is a configuration error the operator must see, once.
                    if lastWarning != refusal.description { manager.logger.warning("\(message)") }
                    lastWarning = refusal.description
                } else {
                    manager.logger.debug("\(message)")
                }
                connection?.close()
                connection = nil
                try? await Task.sleep(for: .milliseconds(backoff))
                backoff = min(backoff * 2, ReplicaFetcherManager.backoffMaxMillis)
            }
        }
    }

    /// One fetch round; false when every partition answered an error (back off a little).
    private func fetchOnce(_ wanted: [TopicPartition: Int32], over connection: KafkaClientConnection, clientId: String) async throws -> Bool {
        let broker = manager.broker
        var byTopic: [String: [FetchRequest.Topic.Partition]] = [:]
        for (tp, epoch) in wanted {
            let position = try broker.replicaPosition(tp)
            byTopic[tp.topic, default: []].append(.init(
                partition: tp.partition, currentLeaderEpoch: epoch, fetchOffset: position.logEnd,
                lastFetchedEpoch: position.lastEpoch, logStartOffset: -1, partitionMaxBytes: ReplicaFetcherManager.partitionMaxBytes))
        }
        let request = FetchRequest(
            replicaId: manager.nodeId, maxWaitMs: ReplicaFetcherManager.fetchWaitMillis, minBytes: 1,
            maxBytes: ReplicaFetcherManager.responseMaxBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
            topics: byTopic.map { FetchRequest.Topic(topic: $0.key, partitions: $0.value) })
        var body = try await connection.call(.fetch, version: 12, clientId: clientId, request)
        let response = try FetchResponse(from: &body, version: 12)
        if response.errorCode == KafkaErrorCode.clusterAuthorizationFailed.rawValue {
            throw ReplicationError(.authorization, "the leader refused the replica fetch (CLUSTER_AUTHORIZATION_FAILED: the inter-broker principal needs CLUSTER_ACTION on the cluster, or to be a super user)")
        }
        if response.errorCode != 0 { throw ReplicationError("fetch refused with error \(response.errorCode)") }
        if manager.paused { return true }
        var progressed = false
        let loop = connection.channel.eventLoop
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition(topic.topic, p.partitionIndex)
                guard partitions.withLockedValue({ $0[tp] }) == wanted[tp] else { continue }  // role changed meanwhile
                if p.errorCode != 0 { continue }
                progressed = true
                if p.divergingEpoch.epoch >= 0 || p.divergingEpoch.endOffset >= 0 {
                    try await truncate(tp, leaderEpoch: p.divergingEpoch.epoch, leaderEnd: p.divergingEpoch.endOffset, on: loop)
                    continue
                }
                var records = ByteBuffer()
                if case .buffer(let b) = p.records { records = b }
                _ = try await broker.appendReplicated(tp, records, leaderHighWatermark: p.highWatermark, on: loop).get()
            }
        }
        return progressed
    }

    /// Cuts `tp` to where the leader's log agrees: min(the leader's end of `leaderEpoch`,
    /// this log's end of the largest epoch ≤ it).
    private func truncate(_ tp: TopicPartition, leaderEpoch: Int32, leaderEnd: Int64, on loop: EventLoop) async throws {
        let broker = manager.broker
        let local = try broker.endOffset(tp, forLeaderEpoch: max(0, leaderEpoch))
        let position = try broker.replicaPosition(tp)
        var target = min(leaderEnd >= 0 ? leaderEnd : position.logEnd, position.logEnd)
        if local.epoch >= 0 { target = min(target, local.endOffset) }
        manager.logger.info("\(tp) diverged from leader \(leader) at epoch \(leaderEpoch) (leader's end \(leaderEnd)): truncating to \(target)")
        try await broker.truncateReplica(tp, to: max(0, target), on: loop).get()
    }
}

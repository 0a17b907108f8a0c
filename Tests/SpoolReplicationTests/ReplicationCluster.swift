import MetricsTestKit
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SpoolBroker
import SpoolKafka
import SpoolRecords
import SpoolReplication
@testable import SpoolStorage

/// The cluster layer for tests: partition records in a dictionary, ISR proposals a
/// compare-and-swap on it, every change applied to every broker (as the etcd watches do).
final class InMemoryCluster: ReplicationDelegate, @unchecked Sendable {  // guarded by lock
    let lock = NIOLock()
    var states: [TopicPartition: ReplicaState] = [:]
    var addresses: [Int32: (host: String, port: Int)] = [:]
    var brokers: [Int32: Broker] = [:]
    /// Every ISR the leaders proposed and won, in order.
    var isrHistory: [[Int32]] = []

    func proposeISR(_ tp: TopicPartition, from current: ReplicaState, to isr: [Int32]) async -> ReplicaState? {
        let result = lock.withLock { () -> (ReplicaState, Bool) in
            guard var state = states[tp] else { return (current, false) }
            guard state.partitionEpoch == current.partitionEpoch, state.leaderEpoch == current.leaderEpoch else { return (state, false) }
            state.isr = isr
            state.partitionEpoch += 1
            states[tp] = state
            isrHistory.append(isr)
            return (state, true)
        }
        if result.1 { await applyEverywhere(tp, result.0) }
        return result.0
    }

    func kafkaAddress(of nodeId: Int32, securityProtocol: String) -> (host: String, port: Int)? {
        lock.withLock { addresses[nodeId] }
    }

    /// The controller's move: a new record for `tp`, applied to every broker.
    func set(_ tp: TopicPartition, _ state: ReplicaState) async {
        lock.withLock { states[tp] = state }
        await applyEverywhere(tp, state)
    }

    func state(_ tp: TopicPartition) -> ReplicaState? { lock.withLock { states[tp] } }

    private func applyEverywhere(_ tp: TopicPartition, _ state: ReplicaState) async {
        for broker in lock.withLock({ Array(brokers.values) }) {
            try? await broker.applyReplicaState(tp, state)
        }
    }
}

/// Three in-process brokers (node ids 1, 2, 3), each with a Kafka listener on an ephemeral
/// loopback port and a follower fetcher, sharing one `InMemoryCluster`.
final class ReplicationCluster: @unchecked Sendable {
    let cluster = InMemoryCluster()
    var brokers: [Int32: Broker] = [:]
    var listeners: [Int32: KafkaListener] = [:]
    var fetchers: [Int32: ReplicaFetcherManager] = [:]
    /// Each broker's metrics, recorded in memory.
    var metrics: [Int32: TestMetrics] = [:]
    let root = NSTemporaryDirectory() + "spool-repl-" + UUID().uuidString
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let tp = TopicPartition("t", 0)
    /// replica.lag.time.max.ms: Kafka's 30 s by default (a loaded CI machine must not shrink
    /// the ISR of a test that does not test shrinking), 1 s where the test waits for a shrink.
    var lagMillis: Int64 = 30_000

    static func start(minISR: Int = 2, lagMillis: Int64 = 30_000) async throws -> ReplicationCluster {
        let c = ReplicationCluster()
        c.lagMillis = lagMillis
        for node: Int32 in [1, 2, 3] {
            var config = BrokerConfig(dataDirectory: c.root + "/b\(node)")
            config.nodeId = node
            config.replicaLagTimeMaxMillis = c.lagMillis
            config.defaultProduceTimeoutMillis = 30_000
            config.ioThreads = 2
            let metrics = TestMetrics()
            c.metrics[node] = metrics
            let broker = try Broker(config: config, events: BrokerEvents(metrics: BrokerMetrics(factory: metrics)))
            var kafka = KafkaListenerConfig()
            kafka.host = "127.0.0.1"
            kafka.port = 0
            let listener = try await KafkaListener.start(broker: broker, config: kafka, group: c.group)
            broker.replicationDelegate = c.cluster
            let fetcher = ReplicaFetcherManager(broker: broker, nodeId: node, delegate: c.cluster, group: c.group)
            fetcher.start()
            c.brokers[node] = broker
            c.listeners[node] = listener
            c.fetchers[node] = fetcher
            c.cluster.lock.withLock {
                c.cluster.addresses[node] = ("127.0.0.1", listener.port)
                c.cluster.brokers[node] = broker
            }
            try await broker.hostTopic("t", partitions: 1, overrides: ["min.insync.replicas": String(minISR)])
        }
        await c.cluster.set(c.tp, ReplicaState(replicas: [1, 2, 3], leader: 1, leaderEpoch: 1, isr: [1, 2, 3], partitionEpoch: 1))
        // Both followers have fetched once before a test starts: on a loaded machine the
        // first connection can take seconds, which is not what any test here measures.
        let fetching = await c.eventually(seconds: 30) {
            let ends = c.brokers[1]!.followerLogEnds(c.tp) ?? [:]
            return (ends[2] ?? -1) >= 0 && (ends[3] ?? -1) >= 0
        }
        if !fetching { throw FollowersNeverFetched() }
        return c
    }

    func stop() async {
        for f in fetchers.values { f.stop() }
        for l in listeners.values { await l.stopAccepting(); await l.drain(seconds: 1) }
        for b in brokers.values { try? await b.close() }
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: root)
    }

    var loop: EventLoop { group.next() }

    func log(_ node: Int32) throws -> PartitionLog { try brokers[node]!.storage.partition(tp) }

    /// Every byte of a replica's log, across segments.
    func bytes(_ node: Int32) throws -> [UInt8] {
        let log = try log(node)
        var out: [UInt8] = []
        var offset = log.startOffset
        while let span = try log.read(from: offset, maxBytes: 1 << 24, upTo: nil).span {
            out += Array(try log.readBytes(from: offset, maxBytes: 1 << 24).readableBytesView)
            offset = span.nextOffset
        }
        return out
    }

    static func batch(_ tag: String, count: Int = 3, pid: Int64 = -1, sequence: Int32 = -1) -> ByteBuffer {
        var builder = pid >= 0 ? RecordBatchBuilder(producerId: pid, producerEpoch: 0, baseSequence: sequence) : RecordBatchBuilder()
        for i in 0..<count { builder.append(key: nil, value: ByteBuffer(string: "\(tag)-\(i)"), timestamp: 1_700_000_000_000 + Int64(i)) }
        return try! builder.build()
    }

    func produce(_ node: Int32, _ batch: ByteBuffer, acks: Acks, timeoutMillis: Int64? = nil) async throws -> PartitionProduceResult {
        try await brokers[node]!.produce(tp, batch, acks: acks, timeoutMillis: timeoutMillis, on: loop).get()
    }

    /// Waits (bounded) until `condition` holds; false on timeout.
    func eventually(seconds: Double = 10, _ condition: () throws -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (try? condition()) == true
    }

    /// A consumer's fetch from `node` at `offset`, answered at once.
    func consumerFetch(_ node: Int32, offset: Int64, currentLeaderEpoch: Int32 = -1) async throws -> FetchedPartition {
        var p = FetchSpec.Partition(tp, offset: offset, maxBytes: 1 << 20)
        p.currentLeaderEpoch = currentLeaderEpoch
        let spec = FetchSpec(partitions: [p], maxBytes: 1 << 20, minBytes: 0, maxWaitMillis: 0)
        return try await brokers[node]!.fetch(spec, on: loop).future.get()[0]
    }
}

/// The followers of a test cluster made no fetch within the start-up bound.
struct FollowersNeverFetched: Error, CustomStringConvertible {
    var description: String { "followers never fetched from the leader within 30 s" }
}

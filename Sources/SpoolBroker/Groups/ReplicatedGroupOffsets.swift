import Logging
import NIOCore
import NIOPosix
import SpoolRecords
import SpoolStorage
import Synchronization

/// Cluster mode's group ownership, as Kafka's: committed offsets live in the internal
/// compacted topic `__consumer_offsets`, replicated like any partition; a group belongs to
/// partition `abs(javaHashCode(group)) % partitions` (Kafka's placement), and the leader of
/// that partition is the group's coordinator.
///
/// - A commit is appended to the group's partition with acks=all (the record Kafka writes:
///   key v1 group/topic/partition, value v3 offset/leader epoch/metadata/timestamp; removals
///   are tombstones) and answered once the ISR holds it; the local offset store is then the
///   coordinator's copy that OffsetFetch reads.
/// - The first call for a group after this broker became the partition's leader (a new
///   leader epoch) starts a load and answers `coordinatorLoadInProgress`: the groups of the
///   partition lose their membership here, the load waits until the high watermark reaches
///   the log end it found (everything the previous leader acknowledged), reads the partition
///   and replaces the local copy of its groups' offsets. Calls for groups of partitions this
///   broker does not lead answer `notCoordinator`.
/// - The topic is created when a group first needs it (`offsets.topic.num.partitions`,
///   replication factor `offsets.topic.replication.factor`, once that many brokers are live).
///
/// Group membership (generations) is not replicated: after a coordinator moves, members
/// rejoin (Kafka's clients do so on `notCoordinator` / `unknownMemberId`). Offset expiry runs
/// on each broker's copy.
public final class ReplicatedGroupOffsets: GroupOwnership {
    /// Kafka's name for the offsets topic.
    public static let topic = "__consumer_offsets"
    /// Kafka's `offsets.commit.timeout.ms`: longest a commit waits for the ISR.
    public static let commitTimeoutMillis: Int64 = 5000
    /// Bytes read per step while loading a partition.
    static let loadReadBytes = 1 << 20
    /// How often a load looks at the high watermark while it waits for it.
    static let loadPollMillis = 20
    /// Least time between two warnings that the topic cannot be created yet.
    static let refusalLogIntervalMillis: Int64 = 10_000

    /// Partitions of the offsets topic when this broker creates it.
    public let partitionsWhenCreated: Int32
    /// Replication factor when this broker creates it (it waits until that many brokers are live).
    public let replicationFactorWhenCreated: Int
    /// Strong: its loads and the topic's creation run in tasks that can outlive the broker's
    /// last other reference at shutdown (an unowned one would then abort the process). `Broker.close()` drops
    /// this object, which breaks the cycle.
    let broker: Broker
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        /// Partition → the leader epoch its groups are loaded (or loading) at.
        var loads: [Int32: Load] = [:]
        /// The topic's partition count once known (it never changes: the topic is not grown).
        var partitionCount: Int32?
        var creating = false
        var refusalLoggedMillis: Int64 = 0
    }

    enum Load: Equatable {
        case loading(epoch: Int32)
        case loaded(epoch: Int32)
    }

    public init(broker: Broker, partitions: Int32, replicationFactor: Int, logger: Logger = Logger(label: "spool.groups")) {
        precondition(partitions > 0 && replicationFactor > 0)
        self.broker = broker
        self.partitionsWhenCreated = partitions
        self.replicationFactorWhenCreated = replicationFactor
        self.logger = logger
    }

    /// Kafka's placement: `Utils.abs(group.hashCode()) % partitions`, with Java's String hash
    /// (over UTF-16 code units), so a group lands where Kafka would put it.
    public static func partition(for group: String, partitions: Int32) -> Int32 {
        var hash: Int32 = 0
        for unit in group.utf16 { hash = 31 &* hash &+ Int32(unit) }
        return (hash & 0x7fff_ffff) % partitions
    }

    /// The offsets topic's partition count, nil until it exists (then asks for it to be created).
    func partitionCount() -> Int32? {
        if let known = state.withLock({ $0.partitionCount }) { return known }
        guard let count = broker.clusterAdministration?.metadataView().topics[Self.topic]?.partitions.count, count > 0 else {
            createTopic()
            return nil
        }
        state.withLock { $0.partitionCount = Int32(count) }
        return Int32(count)
    }

    /// The broker that coordinates `group` now (the leader of its partition), or why none does.
    public func coordinatorNode(for group: String) -> Result<Int32, GroupCoordinatorError> {
        guard let count = partitionCount(), let cluster = broker.clusterAdministration else {
            return .failure(GroupCoordinatorError(.coordinatorNotAvailable, "the offsets topic \(Self.topic) is being created"))
        }
        let view = cluster.metadataView()
        let p = Int(Self.partition(for: group, partitions: count))
        guard let partitions = view.topics[Self.topic]?.partitions, p < partitions.count else {
            return .failure(GroupCoordinatorError(.coordinatorNotAvailable, "the offsets topic \(Self.topic) is not known yet"))
        }
        let leader = view.route(partitions[p]).leader
        guard leader >= 0 else {
            return .failure(GroupCoordinatorError(.coordinatorNotAvailable, "partition \(p) of \(Self.topic) has no leader now"))
        }
        return .success(leader)
    }

    // MARK: GroupOwnership

    public func checkCoordinates(_ group: String) throws(GroupCoordinatorError) {
        guard let count = partitionCount() else {
            throw GroupCoordinatorError(.coordinatorNotAvailable, "the offsets topic \(Self.topic) is being created")
        }
        let p = Self.partition(for: group, partitions: count)
        let tp = TopicPartition(Self.topic, p)
        guard broker.replicaState(tp) != nil, case .leader(let epoch) = broker.role(tp) else {
            throw GroupCoordinatorError(.notCoordinator, "this broker does not coordinate group \(group) (it does not lead \(tp))")
        }
        // One look at the load state (every group call passes here): loaded, loading, or start it.
        let load = state.withLock { s -> Load? in
            switch s.loads[p] {
            case .loaded(epoch)?, .loading(epoch)?: return s.loads[p]
            default:
                s.loads[p] = .loading(epoch: epoch)
                return nil
            }
        }
        if load == .loaded(epoch: epoch) { return }
        if load == nil {
            Task { await self.load(p, count: count, epoch: epoch) }
        }
        throw GroupCoordinatorError(.coordinatorLoadInProgress, "loading the committed offsets of \(tp) for group \(group)")
    }

    public func coordinates(_ group: String) -> Bool {
        (try? checkCoordinates(group)) != nil
    }

    public func replicate(_ change: GroupOffsetsChange, completion: @escaping @Sendable (Result<Void, GroupCoordinatorError>) -> Void) {
        guard let count = partitionCount() else {
            completion(.failure(GroupCoordinatorError(.coordinatorNotAvailable, "the offsets topic \(Self.topic) is being created")))
            return
        }
        let tp = TopicPartition(Self.topic, Self.partition(for: change.group, partitions: count))
        let batch: ByteBuffer
        do {
            batch = try Self.batch(change, nowMillis: PartitionLog.wallClockMillis())
        } catch {
            completion(.failure(GroupCoordinatorError(.storageFailed, "cannot encode the offsets of group \(change.group): \(error)")))
            return
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        broker.produce(tp, batch, acks: .all, timeoutMillis: Self.commitTimeoutMillis, internal: true, on: loop).whenSuccess { result in
            guard let error = result.error else { return completion(.success(())) }
            // Kafka answers a commit the offsets partition refused by the coordinator's state:
            // moved (find it again), or not available now (too few in sync, timed out: retry).
            let moved = (error as? BrokerError)?.code == .notLeaderOrFollower
            completion(.failure(GroupCoordinatorError(moved ? .notCoordinator : .coordinatorNotAvailable,
                                                      "the offsets of group \(change.group) were not replicated (\(tp)): \(error)")))
        }
    }

    // MARK: Loading

    /// Loads partition `p`'s groups at leader epoch `epoch` (see the type's comment).
    func load(_ p: Int32, count: Int32, epoch: Int32) async {
        let tp = TopicPartition(Self.topic, p)
        let mine: @Sendable (String) -> Bool = { Self.partition(for: $0, partitions: count) == p }
        let stillLeading = { [broker] in broker.role(tp) == .leader(epoch: epoch) }
        broker.groups.unload(matching: mine)
        do {
            let target = try broker.offsets(tp).logEndOffset
            while try broker.offsets(tp).highWatermark < target {
                guard stillLeading() else { return forget(p, epoch) }
                try await Task.sleep(for: .milliseconds(Self.loadPollMillis))
            }
            let table = try read(tp, upTo: target)
            guard stillLeading() else { return forget(p, epoch) }
            try await broker.groups.replaceOffsets(matching: mine, with: table)
            let loaded = state.withLock { s -> Bool in
                guard s.loads[p] == .loading(epoch: epoch) else { return false }
                s.loads[p] = .loaded(epoch: epoch)
                return true
            }
            if loaded {
                logger.info("coordinating the groups of \(tp) at leader epoch \(epoch): \(table.count) groups, offsets read up to \(target)")
            }
        } catch {
            logger.warning("loading the groups of \(tp) failed (the next call retries): \(error)")
            forget(p, epoch)
        }
    }

    private func forget(_ p: Int32, _ epoch: Int32) {
        state.withLock { s in if s.loads[p] == .loading(epoch: epoch) { s.loads[p] = nil } }
    }

    /// The committed offsets `tp` holds below `end`, by group (tombstones applied, offsets of
    /// partitions that no longer exist left out).
    func read(_ tp: TopicPartition, upTo end: Int64) throws -> [String: [TopicPartition: CommittedOffset]] {
        let reader = try broker.reader(tp)
        var table: [String: [TopicPartition: CommittedOffset]] = [:]
        var offset = reader.offsets.logStartOffset
        while offset < end {
            let bytes = try reader.readBytes(from: offset, maxBytes: Self.loadReadBytes)
            var batches = RecordBatchReader(bytes, allowPartialTail: true)
            var progressed = false
            while let batch = try batches.next() {
                progressed = true
                offset = max(offset, batch.header.nextOffset)
                if batch.header.isControl { continue }
                for record in try batch.records() where record.offset < end {
                    guard let key = record.key, let (group, committed) = Self.decodeKey(key) else { continue }
                    if let value = record.value, let entry = Self.decodeValue(value) {
                        table[group, default: [:]][committed] = entry
                    } else if record.value == nil {
                        table[group]?[committed] = nil
                    }
                }
            }
            if !progressed { break }
        }
        let exists = { [broker] (p: TopicPartition) in broker.partitionCount(of: p.topic).map { p.partition < $0 } ?? false }
        return table.mapValues { $0.filter { exists($0.key) } }.filter { !$0.value.isEmpty }
    }

    /// Creates the offsets topic (once at a time; a concurrent creation elsewhere is fine).
    private func createTopic() {
        let go = state.withLock { s -> Bool in
            guard !s.creating else { return false }
            s.creating = true
            return true
        }
        guard go else { return }
        Task { [self] in
            defer { state.withLock { $0.creating = false } }
            // As Kafka: not with fewer replicas than asked (an offsets topic created while a
            // broker is down would stay under-replicated); group calls wait meanwhile.
            let live = broker.clusterAdministration?.metadataView().brokers.count ?? 1
            let factor = replicationFactorWhenCreated
            guard live >= factor else {
                let now = PartitionLog.wallClockMillis()
                let log = state.withLock { s -> Bool in
                    guard now - s.refusalLoggedMillis >= Self.refusalLogIntervalMillis else { return false }
                    s.refusalLoggedMillis = now
                    return true
                }
                if log {
                    logger.warning("not creating \(Self.topic) yet: offsets.topic.replication.factor is \(factor) and \(live) brokers are live (group calls answer COORDINATOR_NOT_AVAILABLE until enough are)")
                }
                return
            }
            do {
                _ = try await broker.createTopic(Self.topic, partitions: partitionsWhenCreated, replicationFactor: factor,
                                                 configs: ["cleanup.policy": "compact"])
                logger.info("created \(Self.topic): \(partitionsWhenCreated) partitions, replication factor \(factor)")
            } catch let error as BrokerError where error.code == .topicExists {
                // Another broker created it first.
            } catch {
                logger.warning("creating \(Self.topic) failed (the next group call retries): \(error)")
            }
        }
    }

    // MARK: Records (Kafka's formats)

    /// One batch of `change`'s records: key v1 (group, topic, partition); value v3 (offset,
    /// leader epoch -1, metadata, commit timestamp), or none (a tombstone).
    static func batch(_ change: GroupOffsetsChange, nowMillis: Int64) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(codec: .none)
        switch change {
        case .commit(let group, let offsets):
            for (tp, committed) in offsets.sorted(by: { $0.key < $1.key }) {
                builder.append(key: encodeKey(group, tp), value: encodeValue(committed), timestamp: committed.commitTimestamp)
            }
        case .remove(let group, let partitions):
            for tp in partitions.sorted() {
                builder.append(key: encodeKey(group, tp), value: nil as [UInt8]?, timestamp: nowMillis)
            }
        }
        return try builder.build()
    }

    static func encodeKey(_ group: String, _ tp: TopicPartition) -> [UInt8] {
        var out: [UInt8] = []
        put(Int16(1), &out)
        put(string: group, &out)
        put(string: tp.topic, &out)
        put(tp.partition, &out)
        return out
    }

    static func encodeValue(_ committed: CommittedOffset) -> [UInt8] {
        var out: [UInt8] = []
        put(Int16(3), &out)
        put(committed.offset, &out)
        put(Int32(-1), &out)
        put(string: committed.metadata, &out)
        put(committed.commitTimestamp, &out)
        return out
    }

    /// An offset-commit key (versions 0 and 1); nil for group-metadata keys (version 2) or damage.
    static func decodeKey(_ buffer: ByteBuffer) -> (String, TopicPartition)? {
        var b = buffer
        guard let version = b.readInteger(as: Int16.self), version == 0 || version == 1,
              let group = readString(&b), let topic = readString(&b), let partition = b.readInteger(as: Int32.self) else { return nil }
        return (group, TopicPartition(topic, partition))
    }

    /// An offset-commit value, versions 0 to 3.
    static func decodeValue(_ buffer: ByteBuffer) -> CommittedOffset? {
        var b = buffer
        guard let version = b.readInteger(as: Int16.self), (0...3).contains(version), let offset = b.readInteger(as: Int64.self) else { return nil }
        if version == 3 { guard b.readInteger(as: Int32.self) != nil else { return nil } }
        guard let metadata = readString(&b), let timestamp = b.readInteger(as: Int64.self) else { return nil }
        return CommittedOffset(offset: offset, metadata: metadata, commitTimestamp: timestamp)
    }

    private static func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func put(string: String, _ out: inout [UInt8]) {
        let bytes = Array(string.utf8)
        precondition(bytes.count <= Int(Int16.max), "offsets-topic strings are bounded by the group, topic and metadata limits")
        put(Int16(bytes.count), &out)
        out += bytes
    }

    private static func readString(_ b: inout ByteBuffer) -> String? {
        guard let length = b.readInteger(as: Int16.self), length >= 0, let text = b.readString(length: Int(length)) else { return nil }
        return text
    }
}

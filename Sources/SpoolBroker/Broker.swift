import Logging
import NIOCore
import SpoolProtocol
import SpoolRecords
import SpoolStorage

/// The broker's request logic, independent of connections: topic admin, produce,
/// fetch planning, offsets. Connection handlers decode frames and call it.
public final class Broker: Sendable {
    public static let protocolVersion: UInt32 = 1
    public static let version = "0.1.0"

    public let config: BrokerConfig
    public let storage: LogManager
    /// Metrics and the log.
    public let events: BrokerEvents
    /// When the broker was created (wall clock, milliseconds since the epoch).
    public let startedAtMillis = PartitionLog.wallClockMillis()
    let notifier = AppendNotifier()
    let accumulator: RecordAccumulator

    public init(config: BrokerConfig, events: BrokerEvents = BrokerEvents()) throws {
        self.config = config
        self.events = events
        storage = try LogManager(config: config.storage, observer: events)
        events.storageOpened(cleanStop: storage.openedClean)
        accumulator = RecordAccumulator(maxBatchBytes: config.accumulatorBatchBytes)
        accumulator.sink = { [storage, notifier] tp, batch in
            var batch = batch
            return try Self.append(tp, &batch, storage: storage, notifier: notifier).result
        }
    }

    // MARK: Admin

    func handshake(_ request: Spool_V1_HandshakeRequest) throws -> Spool_V1_HandshakeResponse {
        let minVersion = request.minVersion == 0 ? 1 : request.minVersion
        let maxVersion = request.maxVersion == 0 ? 1 : request.maxVersion
        guard minVersion <= Self.protocolVersion && maxVersion >= Self.protocolVersion else {
            throw SpoolStatusError(.failedPrecondition, "client speaks protocol versions \(minVersion)...\(maxVersion); broker speaks \(Self.protocolVersion)")
        }
        var response = Spool_V1_HandshakeResponse()
        response.version = Self.protocolVersion
        response.brokerVersion = Self.version
        response.maxFrameBytes = UInt32(config.maxFrameBytes)
        response.maxInFlight = UInt32(config.maxInFlightPerConnection)
        return response
    }

    func describe(_ name: String) throws -> Spool_V1_TopicDescription {
        guard let definition = storage.topics.get(name) else { throw StorageError(.unknownTopic, "topic \(name) does not exist") }
        let config = try storage.topicConfig(name)
        var d = Spool_V1_TopicDescription()
        d.name = name
        for log in try storage.partitions(of: name) {
            var p = Spool_V1_PartitionDescription()
            p.partition = log.partition
            p.logStartOffset = log.startOffset
            p.logEndOffset = log.endOffset
            p.highWatermark = log.highWatermark
            p.sizeBytes = log.sizeBytes
            p.segments = Int32(log.segmentCount)
            d.partitions.append(p)
        }
        d.configs = config.entries.sorted { $0.key < $1.key }.map(Self.entry)
        d.overrides = definition.overrides.sorted { $0.key < $1.key }.map(Self.entry)
        return d
    }

    static func entry(_ kv: (key: String, value: String)) -> Spool_V1_ConfigEntry {
        var e = Spool_V1_ConfigEntry()
        e.key = kv.key
        e.value = kv.value
        return e
    }

    func createTopic(_ request: Spool_V1_CreateTopicRequest) throws -> Spool_V1_CreateTopicResponse {
        var overrides: [String: String] = [:]
        for c in request.configs { overrides[c.key] = c.value }
        try storage.createTopic(request.name, partitions: request.partitions == 0 ? config.defaultPartitions : request.partitions, overrides: overrides)
        var response = Spool_V1_CreateTopicResponse()
        response.topic = try describe(request.name)
        return response
    }

    func deleteTopic(_ request: Spool_V1_DeleteTopicRequest) throws -> Spool_V1_DeleteTopicResponse {
        try storage.deleteTopic(request.name)
        return Spool_V1_DeleteTopicResponse()
    }

    func listTopics() -> Spool_V1_ListTopicsResponse {
        var response = Spool_V1_ListTopicsResponse()
        response.topics = storage.topics.all.map { t in
            var s = Spool_V1_TopicSummary()
            s.name = t.name
            s.partitions = t.partitions
            return s
        }
        return response
    }

    func alterTopic(_ request: Spool_V1_AlterTopicConfigRequest) throws -> Spool_V1_AlterTopicConfigResponse {
        var set: [String: String] = [:]
        for c in request.set { set[c.key] = c.value }
        _ = try storage.alterTopic(request.name, set: set)
        var response = Spool_V1_AlterTopicConfigResponse()
        response.topic = try describe(request.name)
        return response
    }

    // MARK: Produce

    /// Appends one partition's batches. Notifies waiting fetches and subscribers.
    func append(_ tp: TopicPartition, _ batches: inout ByteBuffer) throws -> (log: PartitionLog, result: AppendResult) {
        try Self.append(tp, &batches, storage: storage, notifier: notifier)
    }

    /// The one append path (Produce and the loose-record accumulator): validate, append, wake readers.
    static func append(
        _ tp: TopicPartition, _ batches: inout ByteBuffer, storage: LogManager, notifier: AppendNotifier
    ) throws -> (log: PartitionLog, result: AppendResult) {
        let log = try storage.partition(tp)
        let result = try log.append(&batches)
        notifier.notify(tp)
        return (log, result)
    }

    // MARK: Offsets

    func listOffsets(_ request: Spool_V1_ListOffsetsRequest) -> Spool_V1_ListOffsetsResponse {
        var response = Spool_V1_ListOffsetsResponse()
        for p in request.partitions {
            var r = Spool_V1_ListOffsetsResult()
            r.topic = p.topic
            r.partition = p.partition
            do {
                let log = try storage.partition(TopicPartition(p.topic, p.partition))
                switch p.spec {
                case .earliest: r.offset = log.startOffset
                case .latest: r.offset = log.endOffset
                case .timestamp: r.offset = try log.offset(forTimestamp: p.timestamp) ?? -1
                case .UNRECOGNIZED(let n): throw SpoolStatusError(.invalidArgument, "unknown offset spec \(n)")
                }
            } catch {
                let status = StatusMapping.status(for: error)
                r.code = status.code
                r.message = status.message
            }
            response.results.append(r)
        }
        return response
    }

    func commitOffsets(_ request: Spool_V1_CommitOffsetsRequest) throws -> Spool_V1_CommitOffsetsResponse {
        let now = PartitionLog.wallClockMillis()
        var offsets: [TopicPartition: CommittedOffset] = [:]
        for o in request.offsets {
            _ = try storage.partition(TopicPartition(o.topic, o.partition)) // must exist
            offsets[TopicPartition(o.topic, o.partition)] = CommittedOffset(offset: o.offset, metadata: o.metadata, commitTimestamp: now)
        }
        try storage.offsets.commit(group: request.group, offsets)
        return Spool_V1_CommitOffsetsResponse()
    }

    func fetchOffsets(_ request: Spool_V1_FetchOffsetsRequest) -> Spool_V1_FetchOffsetsResponse {
        var response = Spool_V1_FetchOffsetsResponse()
        let topics = Set(request.topics)
        for (tp, c) in storage.offsets.committed(group: request.group).sorted(by: { $0.key < $1.key })
        where topics.isEmpty || topics.contains(tp.topic) {
            var o = Spool_V1_GroupOffset()
            o.topic = tp.topic
            o.partition = tp.partition
            o.offset = c.offset
            o.metadata = c.metadata
            o.commitTimestamp = c.commitTimestamp
            response.offsets.append(o)
        }
        return response
    }

    func listGroups() -> Spool_V1_ListGroupsResponse {
        var response = Spool_V1_ListGroupsResponse()
        response.groups = storage.offsets.groups
        return response
    }

    /// Stops the storage cleanly (flush, indexes, clean marker).
    public func close() throws {
        accumulator.flushAll()
        notifier.notifyAll()
        try storage.close()
    }
}

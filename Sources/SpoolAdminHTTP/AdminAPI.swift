#if canImport(Glibc)
import Glibc
#endif
import SpoolBroker
import SpoolRecords

/// The admin API's answers, built from the broker's state (no HTTP here: the
/// listener maps paths to these calls, and tests call them directly).
///
/// Every call takes who asks (`AccessIdentity`: the logged-in `User:name`, or
/// `User:ANONYMOUS` without a login) and, with the authorizer on, answers what that
/// principal's ACLs allow, through `Broker.authorize` as the Kafka listener does: topics
/// and groups it may not DESCRIBE are left out of lists and counts, a topic's or group's
/// page needs DESCRIBE and records need READ (``AdminAPIError/Code/forbidden`` otherwise).
public struct AdminAPI: Sendable {
    public let broker: Broker
    /// The broker's listeners, as bound (asked on every call: ports are known only once bound).
    public let listeners: @Sendable () -> [ListenerView]
    /// True once recovery is done and the listeners accept connections.
    public let ready: @Sendable () -> Bool
    /// Readings taken right before a scrape (e.g. the listeners' buffered bytes).
    public let sample: @Sendable () async -> Void

    public init(broker: Broker, listeners: @escaping @Sendable () -> [ListenerView], ready: @escaping @Sendable () -> Bool,
                sample: @escaping @Sendable () async -> Void = {}) {
        self.broker = broker
        self.listeners = listeners
        self.ready = ready
        self.sample = sample
    }

    public func brokerInfo(as who: AccessIdentity = AdminAPI.unauthenticated) -> BrokerInfoView {
        let disk = ProcessStats.diskSpace(broker.dataDirectory)
        var partitions = 0
        var stopped = 0
        var totals: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
        let topics = broker.listTopics().filter { may(who, .describe, .topic, $0.name) }
        for topic in topics {
            for p in (try? broker.describeTopic(topic.name))?.partitions ?? [] {
                partitions += 1
                if p.stopped { stopped += 1 }
            }
            let t = broker.events.metrics.topic(topic.name).totals
            totals = (totals.0 + t.recordsIn, totals.1 + t.recordsOut, totals.2 + t.bytesIn, totals.3 + t.bytesOut)
        }
        let now = Broker.wallClockMillis()
        let files = broker.segmentFiles
        return BrokerInfoView(
            version: Broker.version, startedAtMillis: broker.startedAtMillis,
            uptimeSeconds: Double(now - broker.startedAtMillis) / 1000,
            dataDirectory: Self.absolute(broker.dataDirectory),
            diskFreeBytes: disk?.freeBytes, diskTotalBytes: disk?.totalBytes,
            listeners: listeners(), ready: ready(), topics: topics.count, partitions: partitions,
            partitionsStopped: stopped, openDescriptors: ProcessStats.openDescriptors(),
            descriptorLimit: ProcessStats.descriptorLimit(), segmentFilesOpen: files.open,
            segmentFilesBudget: files.capacity,
            recordsIn: totals.0, recordsOut: totals.1, bytesIn: totals.2, bytesOut: totals.3,
            degraded: degraded())
    }

    /// Sentences for the background tasks failing persistently (retention, offset expiry,
    /// offsets-log compaction); empty when the broker is not degraded.
    public func degraded() -> [String] {
        broker.events.maintenance.degraded.map(\.sentence)
    }

    /// The cluster as this broker knows it (`GET /v1/cluster`).
    public func cluster(as who: AccessIdentity = AdminAPI.unauthenticated) -> ClusterView {
        ClusterView.make(broker) { may(who, .describe, .topic, $0) }
    }

    public func topics(as who: AccessIdentity = AdminAPI.unauthenticated) -> [TopicView] {
        broker.listTopics().sorted { $0.name < $1.name }.filter { may(who, .describe, .topic, $0.name) }.compactMap { try? topicView($0.name) }
    }

    public func topic(_ name: String, as who: AccessIdentity = AdminAPI.unauthenticated) throws -> TopicView {
        try require(who, .describe, .topic, name, api: "GET /v1/topics/{topic}")
        return try topicView(name)
    }

    func topicView(_ name: String) throws -> TopicView {
        guard let description = try? broker.describeTopic(name) else {
            throw AdminAPIError(.notFound, "topic \(name) does not exist")
        }
        let partitions = description.partitions.map { p in
            PartitionView(partition: p.partition, startOffset: p.logStartOffset, endOffset: p.logEndOffset,
                          sizeBytes: p.sizeBytes, segments: p.segments, stopped: p.stopped, error: p.failure)
        }
        let totals = broker.events.metrics.topic(name).totals
        return TopicView(
            name: name, partitions: partitions, configs: description.configs, overrides: description.overrides,
            sizeBytes: partitions.reduce(0) { $0 + $1.sizeBytes },
            records: partitions.reduce(0) { $0 + ($1.endOffset - $1.startOffset) },
            recordsIn: totals.recordsIn, recordsOut: totals.recordsOut, bytesIn: totals.bytesIn, bytesOut: totals.bytesOut)
    }

    /// Groups with members (the coordinator's) or committed offsets (the store's), by name.
    func groupNames() -> [String] {
        let active = ((try? broker.groups.listGroups()) ?? []).map(\.groupId)
        return Set(active + broker.groupsWithCommittedOffsets).sorted()
    }

    public func groups(as who: AccessIdentity = AdminAPI.unauthenticated) -> [GroupView] {
        groupNames().filter { may(who, .describe, .group, $0) }.map { group($0, as: who) }
    }

    public func group(named name: String, as who: AccessIdentity = AdminAPI.unauthenticated) throws -> GroupView {
        try require(who, .describe, .group, name, api: "GET /v1/groups/{group}")
        guard groupNames().contains(name) else {
            throw AdminAPIError(.notFound, "consumer group \(name) does not exist")
        }
        return group(name, as: who)
    }

    /// The group's members and offsets; offsets and assigned partitions of topics `who` may
    /// not DESCRIBE are left out (as OffsetFetch leaves them out), and so is their lag.
    func group(_ name: String, as who: AccessIdentity) -> GroupView {
        var offsets: [GroupOffsetView] = []
        var totalLag: Int64 = 0
        for committed in broker.storedOffsets(group: name) where may(who, .describe, .topic, committed.partition.topic) {
            let tp = committed.partition
            let end = try? broker.offsets(tp).logEndOffset
            let lag = end.map { max(0, $0 - committed.offset) }
            totalLag += lag ?? 0
            offsets.append(GroupOffsetView(
                topic: tp.topic, partition: tp.partition, committedOffset: committed.offset, endOffset: end, lag: lag,
                commitTimestampMillis: committed.commitTimestamp, metadata: committed.metadata))
        }
        guard let description = try? broker.groups.describeGroup(name) else {
            // Only committed offsets: no member has joined since the broker started.
            return GroupView(group: name, state: "Empty", generation: nil, protocolName: nil, members: [],
                             offsets: offsets, totalLag: totalLag)
        }
        let members = description.members.map { m in
            GroupMemberView(memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost,
                            assignment: description.protocolType == "consumer"
                                ? (ConsumerAssignment.decode(m.assignment) ?? []).filter { may(who, .describe, .topic, $0.topic) } : [])
        }
        return GroupView(group: name, state: description.state.rawValue, generation: description.generationId,
                         protocolName: description.protocolName.isEmpty ? nil : description.protocolName,
                         members: members, offsets: offsets, totalLag: totalLag)
    }

    /// What the metrics need from the groups on a scrape.
    public func groupSnapshots() -> [BrokerMetrics.GroupSnapshot] {
        groupNames().map { name in
            BrokerMetrics.GroupSnapshot(group: name, members: (try? broker.groups.describeGroup(name))?.members.count ?? 0,
                                        committed: Dictionary(broker.storedOffsets(group: name).map { ($0.partition, $0.offset) },
                                                              uniquingKeysWith: { a, _ in a }))
        }
    }

    /// Records of one partition: the latest `limit`, or from `from` on.
    public func records(topic: String, partition: Int32, from: Int64?, limit: Int, maxBytes: Int,
                        as who: AccessIdentity = AdminAPI.unauthenticated) throws -> RecordsView {
        try require(who, .read, .topic, topic, api: "GET /v1/topics/{topic}/partitions/{partition}/records")
        guard (1...RecordBrowser.maxRecordsLimit).contains(limit) else {
            throw AdminAPIError(.invalidArgument, "limit must be 1...\(RecordBrowser.maxRecordsLimit) (got \(limit))")
        }
        guard (1...RecordBrowser.maxReadBytesLimit).contains(maxBytes) else {
            throw AdminAPIError(.invalidArgument, "max_bytes must be 1...\(RecordBrowser.maxReadBytesLimit) (got \(maxBytes))")
        }
        let reader: PartitionReader
        do {
            reader = try broker.reader(TopicPartition(topic, partition))
        } catch {
            throw AdminAPIError(.notFound, (error as? BrokerError)?.message ?? "\(error)")
        }
        do {
            return try RecordBrowser(maxRecords: limit, maxReadBytes: maxBytes).read(reader, from: from)
        } catch let error as BrokerError {
            throw AdminAPIError(.internal, error.message)
        } catch {
            throw AdminAPIError(.internal, "cannot decode records of \(topic)-\(partition): \(error)")
        }
    }

    /// Gauges computed on scrape, then the Prometheus text.
    public func metricsText(_ exporter: PrometheusExporter) -> [UInt8] {
        broker.collectMetrics(groups: groupSnapshots())
        return exporter.render()
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard let cwd = getcwd(&buffer, buffer.count) else { return path }
        let base = String(cString: cwd)
        let trimmed = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return trimmed == "." ? base : base + "/" + trimmed
    }
}

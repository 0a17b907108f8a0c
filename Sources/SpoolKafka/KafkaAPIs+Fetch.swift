import NIOCore
import SpoolBroker
import SpoolRecords

// Fetch: the core plans spans of whole batches (long poll included); the response is
// written as header bytes with each span following as a FileRegion (sendfile).
extension KafkaAPIs {
    func fetch(_ request: FetchRequest, _ call: KafkaCall) -> Started {
        var partitions: [FetchSpec.Partition] = []
        // A follower's fetch (a replica id) needs CLUSTER_ACTION on the cluster; a consumer's
        // READ on each topic. Refused partitions answer TOPIC_AUTHORIZATION_FAILED.
        var denied: [FetchResponse.Topic] = []
        let follower = request.replicaId >= 0
        let followerAllowed = !follower || mayOnCluster(call, .clusterAction)
        for topic in request.topics {
            guard followerAllowed && (follower || may(call, .read, topic: topic.topic)) else {
                denied.append(.init(topic: topic.topic, partitions: topic.partitions.map {
                    .init(partitionIndex: $0.partition, errorCode: Self.topicDenied, highWatermark: -1, lastStableOffset: -1,
                          logStartOffset: -1, abortedTransactions: [], records: .buffer(ByteBuffer()))
                }))
                continue
            }
            for p in topic.partitions {
                var partition = FetchSpec.Partition(
                    TopicPartition(topic.topic, p.partition), offset: p.fetchOffset, maxBytes: max(0, Int(p.partitionMaxBytes)))
                partition.currentLeaderEpoch = call.version >= 9 ? p.currentLeaderEpoch : -1
                partition.lastFetchedEpoch = call.version >= 12 ? p.lastFetchedEpoch : -1
                partitions.append(partition)
            }
        }
        guard !partitions.isEmpty else {
            // An empty fetch (e.g. a fetch-session ping): answer at once.
            return Started(reply: call.eventLoop.makeSucceededFuture(call.respond(FetchResponse(sessionId: 0, responses: denied))))
        }
        var spec = FetchSpec(
            partitions: partitions, maxBytes: min(max(1, Int(request.maxBytes)), config.fetchResponseBytesMax),
            minBytes: max(0, Int(request.minBytes)),
            maxWaitMillis: Int64(max(0, request.maxWaitMs)), spanBytesMax: config.fetchSpanBytesMax)
        spec.readCommitted = request.isolationLevel == 1
        // A follower's replica fetch (Fetch ≤ v14 carries the broker id; consumers send -1).
        spec.replicaId = request.replicaId >= 0 ? request.replicaId : -1
        let pending = broker.fetch(spec, on: call.eventLoop)
        let reply = pending.future.flatMap { planned in fetchReply(planned, call, denied: denied) }
        return Started(reply: reply, fetch: pending)
    }

    /// Has the core open each span first (a segment deleted meanwhile turns into a
    /// partition error, never a half-written response), then encodes the response with
    /// the records deferred.
    private func fetchReply(_ planned: [FetchedPartition], _ call: KafkaCall, denied: [FetchResponse.Topic]) -> EventLoopFuture<KafkaReply> {
        var spans: [FetchedSpan] = []
        var topics: [FetchResponse.Topic] = []
        for entry in planned {
            var partition = FetchResponse.Topic.Partition(
                partitionIndex: entry.topicPartition.partition,
                errorCode: entry.error.map { KafkaErrorCode($0).rawValue } ?? 0,
                highWatermark: entry.highWatermark,
                lastStableOffset: entry.lastStableOffset >= 0 ? entry.lastStableOffset : entry.highWatermark,
                logStartOffset: entry.logStartOffset,
                abortedTransactions: entry.abortedTransactions.map { .init(producerId: $0.producerId, firstOffset: $0.firstOffset) },
                records: .buffer(ByteBuffer()))
            if let diverging = entry.divergingEpoch {
                partition.divergingEpoch = .init(epoch: diverging.epoch, endOffset: diverging.endOffset)
            }
            // A span holds a descriptor until written, one from the connection's budget. Without
            // one (earlier responses of this connection hold them all) the partition answers
            // with no records this time and the client fetches again.
            switch broker.openSpan(entry, budget: budget) {
            case .opened(let span):
                spans.append(span)
                partition.records = .deferred(byteCount: span.byteCount)
            case .failed(let error):
                partition.errorCode = KafkaErrorCode(error).rawValue
            case .nothing, .noDescriptor:
                break
            }
            if topics.last?.topic == entry.topicPartition.topic {
                topics[topics.count - 1].partitions.append(partition)
            } else {
                topics.append(.init(topic: entry.topicPartition.topic, partitions: [partition]))
            }
        }
        topics += denied
        // Over its fetch quota, the client's answer is held (Kafka's throttle_time_ms).
        let bytes = spans.reduce(0) { $0 + $1.byteCount }
        let throttle = bytes == 0 ? 0 : broker.quotas.record(
            .fetch, user: call.quotaUser, clientId: call.header.clientId ?? "", bytes: bytes, nowMillis: Broker.wallClockMillis())
        let frame = KafkaResponseFrame.encode(
            FetchResponse(throttleTimeMs: Int32(clamping: throttle), sessionId: 0, responses: topics),
            correlationId: call.header.correlationId, api: .fetch, version: call.version)
        return call.held(.response(frame, spans: spans), millis: throttle)
    }

    func listOffsets(_ request: ListOffsetsRequest, _ call: KafkaCall) -> ListOffsetsResponse {
        ListOffsetsResponse(topics: request.topics.map { topic in
            .init(name: topic.name, partitions: topic.partitions.map { p in
                // DESCRIBE on the topic.
                guard may(call, .describe, topic: topic.name) else {
                    return .init(partitionIndex: p.partitionIndex, errorCode: Self.topicDenied)
                }
                let tp = TopicPartition(topic.name, p.partitionIndex)
                let spec: OffsetSpec
                switch p.timestamp {
                case -1: spec = .latest
                case -2: spec = .earliest
                case -3 where call.version >= 7: spec = .maxTimestamp
                case ..<0:
                    return .init(partitionIndex: p.partitionIndex, errorCode: KafkaErrorCode.invalidRequest.rawValue)
                default: spec = .timestamp(p.timestamp)
                }
                do {
                    try broker.checkLeaderEpoch(tp, call.version >= 4 ? p.currentLeaderEpoch : -1)
                    let found = try broker.listOffset(tp, spec, readCommitted: request.isolationLevel == 1)
                    return .init(partitionIndex: p.partitionIndex, errorCode: 0, timestamp: found.timestamp, offset: found.offset,
                                 leaderEpoch: broker.replicaState(tp)?.leaderEpoch ?? 0)
                } catch {
                    return .init(partitionIndex: p.partitionIndex, errorCode: KafkaErrorCode(error).rawValue)
                }
            })
        })
    }
}

import NIOCore
import SpoolBroker
import SpoolRecords

// DescribeLogDirs (API 35) and DescribeProducers (API 61): what admin clients ask of storage.
extension KafkaAPIs {
    func describeLogDirs(_ request: DescribeLogDirsRequest, _ call: KafkaCall) -> DescribeLogDirsResponse {
        // DESCRIBE on the cluster.
        guard mayOnCluster(call, .describe) else {
            return DescribeLogDirsResponse(throttleTimeMs: 0, errorCode: Self.clusterDenied, results: [])
        }
        let dir = broker.describeLogDir()
        // A null topic list asks for every partition; a named one only for those of it that exist.
        var wanted: [String: [Int32]] = [:]
        if let topics = request.topics {
            for t in topics { wanted[t.topic, default: []] += t.partitions }
        }
        var byTopic: [String: [DescribeLogDirsResponse.Result.Topic.Partition]] = [:]
        for (tp, size) in dir.partitions.sorted(by: { $0.key < $1.key }) {
            if request.topics != nil && !(wanted[tp.topic]?.contains(tp.partition) ?? false) { continue }
            byTopic[tp.topic, default: []].append(.init(partitionIndex: tp.partition, partitionSize: size, offsetLag: 0, isFutureKey: false))
        }
        let topics = byTopic.sorted { $0.key < $1.key }.map { DescribeLogDirsResponse.Result.Topic(name: $0.key, partitions: $0.value) }
        return DescribeLogDirsResponse(throttleTimeMs: 0, errorCode: 0, results: [
            .init(errorCode: 0, logDir: dir.path, topics: topics, totalBytes: dir.totalBytes, usableBytes: dir.usableBytes),
        ])
    }

    func describeProducers(_ request: DescribeProducersRequest, _ call: KafkaCall) -> EventLoopFuture<DescribeProducersResponse> {
        let broker = self.broker
        // READ on each topic.
        let denied = Set(request.topics.map(\.name).filter { !may(call, .read, topic: $0) })
        return call.eventLoop.makeFutureWithTask {
            DescribeProducersResponse(throttleTimeMs: 0, topics: request.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitionIndexes.map { index in
                    if denied.contains(topic.name) {
                        return .init(partitionIndex: index, errorCode: Self.topicDenied, errorMessage: "not authorized to read topic \(topic.name)")
                    }
                    do {
                        let producers = try broker.describeProducers(TopicPartition(topic.name, index))
                        return .init(partitionIndex: index, errorCode: 0, errorMessage: nil, activeProducers: producers.map {
                            .init(producerId: $0.producerId, producerEpoch: Int32($0.producerEpoch), lastSequence: $0.lastSequence,
                                  lastTimestamp: $0.lastTimestamp, coordinatorEpoch: -1, currentTxnStartOffset: -1)
                        })
                    } catch {
                        return .init(partitionIndex: index, errorCode: KafkaErrorCode(error).rawValue, errorMessage: kafkaErrorMessage(error))
                    }
                })
            })
        }
    }
}

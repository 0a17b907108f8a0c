import SpoolBroker
import SpoolRecords

// OffsetForLeaderEpoch (KIP-101, KIP-279): where a leader epoch ends in the leader's log,
// for a follower deciding where to truncate and a consumer validating its position.
extension KafkaAPIs {
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest, _ call: KafkaCall) -> OffsetForLeaderEpochResponse {
        // A follower (CLUSTER_ACTION on the cluster) may ask of every topic; a consumer needs DESCRIBE on it.
        let replica = mayOnCluster(call, .clusterAction, log: false)
        return OffsetForLeaderEpochResponse(topics: request.topics.map { topic in
            let allowed = replica || may(call, .describe, topic: topic.topic)
            return .init(topic: topic.topic, partitions: topic.partitions.map { p in
                guard allowed else { return .init(errorCode: Self.topicDenied, partition: p.partition) }
                let tp = TopicPartition(topic.topic, p.partition)
                do {
                    let answer = try broker.offsetForLeaderEpoch(tp, p.leaderEpoch, currentLeaderEpoch: p.currentLeaderEpoch)
                    return .init(errorCode: 0, partition: p.partition, leaderEpoch: answer.epoch, endOffset: answer.endOffset)
                } catch {
                    return .init(errorCode: KafkaErrorCode(error).rawValue, partition: p.partition)
                }
            })
        })
    }
}

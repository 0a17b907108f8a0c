import NIOCore
import SpoolBroker
import SpoolRecords

// OffsetDelete (API 47): removes a group's committed offsets for the listed partitions.
extension KafkaAPIs {
    func offsetDelete(_ request: OffsetDeleteRequest, _ call: KafkaCall) -> EventLoopFuture<OffsetDeleteResponse> {
        let broker = self.broker
        // DELETE on the group; READ on each topic (TOPIC_AUTHORIZATION_FAILED per partition).
        guard may(call, .delete, group: request.groupId) else {
            return call.eventLoop.makeSucceededFuture(OffsetDeleteResponse(errorCode: Self.groupDenied))
        }
        let deniedTopics = Set(request.topics.map(\.name).filter { !may(call, .read, topic: $0) })
        return call.eventLoop.makeFutureWithTask {
            // Partitions of topics that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION, as Kafka does.
            var unknown: Set<TopicPartition> = []
            var asked: [TopicPartition] = []
            for topic in request.topics where !deniedTopics.contains(topic.name) {
                let count = (try? broker.describeTopic(topic.name).partitions.count) ?? 0
                for p in topic.partitions {
                    let tp = TopicPartition(topic.name, p.partitionIndex)
                    if p.partitionIndex < 0 || Int(p.partitionIndex) >= count { unknown.insert(tp) } else { asked.append(tp) }
                }
            }
            let refused: [TopicPartition: GroupCoordinatorError.Code]
            do {
                refused = try await broker.groups.deleteOffsets(groupId: request.groupId, partitions: asked)
            } catch {
                return OffsetDeleteResponse(errorCode: KafkaErrorCode(error).rawValue)
            }
            return OffsetDeleteResponse(errorCode: 0, topics: request.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map { p in
                    let tp = TopicPartition(topic.name, p.partitionIndex)
                    let code: Int16 = deniedTopics.contains(topic.name) ? Self.topicDenied : unknown.contains(tp) ? KafkaErrorCode.unknownTopicOrPartition.rawValue
                        : refused[tp].map { KafkaErrorCode($0).rawValue } ?? 0
                    return .init(partitionIndex: p.partitionIndex, errorCode: code)
                })
            })
        }
    }
}

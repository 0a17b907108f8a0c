import NIOCore
import SpoolBroker
import SpoolRecords

// DeleteRecords (API 21): moves each partition's log start offset, answering per
// partition with the new low watermark or the partition's error.
extension KafkaAPIs {
    func deleteRecords(_ request: DeleteRecordsRequest, _ call: KafkaCall) -> EventLoopFuture<DeleteRecordsResponse> {
        let broker = self.broker
        return call.eventLoop.makeFutureWithTask {
            var topics: [DeleteRecordsResponse.Topic] = []
            for topic in request.topics {
                var partitions: [DeleteRecordsResponse.Topic.Partition] = []
                let allowed = self.may(call, .delete, topic: topic.name)
                for p in topic.partitions {
                    guard allowed else {
                        partitions.append(.init(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: Self.topicDenied))
                        continue
                    }
                    do {
                        let low = try await broker.deleteRecords(TopicPartition(topic.name, p.partitionIndex), before: p.offset)
                        partitions.append(.init(partitionIndex: p.partitionIndex, lowWatermark: low, errorCode: 0))
                    } catch {
                        partitions.append(.init(partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: KafkaErrorCode(error).rawValue))
                    }
                }
                topics.append(.init(name: topic.name, partitions: partitions))
            }
            return DeleteRecordsResponse(topics: topics)
        }
    }
}

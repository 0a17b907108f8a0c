import NIOCore
import SpoolBroker
import SpoolRecords

/// A live Subscribe stream on one connection: where it reads next, and the client's credit.
final class NativeSubscription {
    let streamID: UInt32
    let tp: TopicPartition
    /// The partition, read through the core.
    let reader: PartitionReader
    var nextOffset: Int64
    /// Bytes the client is still willing to receive.
    var credit: Int
    let maxBytesPerEvent: Int
    /// Set while waiting for an append (token of `Broker.waitForAppend`).
    var waitToken: UInt64?
    /// Set while waiting to retry opening the segment after a failure.
    var retry: Scheduled<Void>?
    /// Failures to open the segment in a row.
    var openFailures = 0

    init(streamID: UInt32, reader: PartitionReader, nextOffset: Int64, credit: Int, maxBytesPerEvent: Int) {
        self.streamID = streamID
        self.tp = reader.topicPartition
        self.reader = reader
        self.nextOffset = nextOffset
        self.credit = credit
        self.maxBytesPerEvent = maxBytesPerEvent
    }
}

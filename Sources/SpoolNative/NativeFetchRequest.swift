import SpoolBroker
import SpoolProtocol
import SpoolRecords

/// A native Fetch request as the broker core's `FetchSpec`, with the zero-value defaults
/// of FRAMING.md and the frame-size arithmetic: the whole answer, message and payload,
/// must fit in one frame of `max_frame_bytes`, so the payload gets what the message
/// (bounded per partition) leaves.
enum NativeFetchRequest {
    /// Longest error message a partition's result carries (longer ones are cut).
    static let errorMessageBytesMax = 256
    /// Most bytes one partition's result adds to the response besides its topic name.
    static let resultBytesMax = 64 + errorMessageBytesMax
    /// The response message's own fields beside its repeated ones.
    static let messageOverheadBytes = 64
    /// `FetchRequest.max_bytes` when zero.
    static let defaultMaxBytes = 50 << 20
    /// `FetchPartition.max_bytes` when zero.
    static let defaultPartitionMaxBytes = 1 << 20

    static func spec(_ request: Spool_V1_FetchRequest, maxFrameBytes: Int) throws -> FetchSpec {
        guard !request.partitions.isEmpty else { throw SpoolStatusError(.invalidArgument, "fetch names no partitions") }
        let messageBytesMax = request.partitions.reduce(messageOverheadBytes) { $0 + $1.topic.utf8.count + resultBytesMax }
        let spanBytesMax = maxFrameBytes - Frame.headerBytes - messageBytesMax
        guard spanBytesMax > 0 else {
            throw SpoolStatusError(.invalidArgument, "a fetch of \(request.partitions.count) partitions cannot be answered within max_frame_bytes (\(maxFrameBytes))")
        }
        var spec = FetchSpec(
            partitions: request.partitions.map { p in
                FetchSpec.Partition(TopicPartition(p.topic, p.partition), offset: p.offset,
                                    maxBytes: p.maxBytes == 0 ? defaultPartitionMaxBytes : Int(p.maxBytes))
            },
            maxBytes: min(request.maxBytes == 0 ? defaultMaxBytes : Int(request.maxBytes), spanBytesMax),
            minBytes: Int(request.minBytes),
            maxWaitMillis: Int64(request.maxWaitMs),
            spanBytesMax: spanBytesMax)
        spec.readCommitted = request.readCommitted
        return spec
    }
}

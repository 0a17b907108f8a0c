import SpoolProtocol
import SpoolRecords

/// Size limits a producer derives from its config, the broker's handshake and a
/// topic's `max.message.bytes`, so that no frame it sends is refused (an oversized
/// frame makes the broker close the whole connection).
struct ProducerLimits: Sendable, Equatable {
    /// Room kept in a frame for its header and the ProduceRequest message
    /// (topic name and up to `partitionsPerRequestMax` partition entries).
    static let requestMessageBytesMax = 32 << 10
    /// Partition entries in one Produce request.
    static let partitionsPerRequestMax = 1024
    /// A topic's `max.message.bytes` when the broker does not report it (Kafka's default).
    static let defaultMaxMessageBytes = (1 << 20) + 12

    /// Largest payload (all batches) of one Produce request.
    var requestPayloadBytesMax: Int
    /// Largest uncompressed batch, header included: its worst-case compressed form
    /// still fits both the topic's limit and one request.
    var batchBytesMax: Int
    /// Largest encoded record: alone in a batch it stays under `batchBytesMax`.
    var recordBytesMax: Int

    init(config: ProducerConfig, maxFrameBytes: Int, maxMessageBytes: Int) {
        var request = config.maxRequestBytes
        if maxFrameBytes > 0 {
            request = min(request, maxFrameBytes - Frame.headerBytes - Self.requestMessageBytesMax)
        }
        request = max(request, RecordBatchHeader.size + 64)
        requestPayloadBytesMax = request
        let wire = min(request, maxMessageBytes)
        // Incompressible records grow a little under a codec; leave room for that growth.
        let growth = Compression.maxCompressedBytes(wire, codec: config.compression.codec) - wire
        batchBytesMax = max(RecordBatchHeader.size + 1, wire - growth)
        recordBytesMax = batchBytesMax - RecordBatchHeader.size
        assert(wire <= RecordBatchHeader.size + 1 || RecordBatchHeader.size + Compression.maxCompressedBytes(recordBytesMax, codec: config.compression.codec) <= wire)
    }

    /// An upper bound of a record's encoded size (the deltas taken at their widest
    /// plausible varints), used for batch limits and buffer accounting.
    static func recordBytesBound(keyBytes: Int?, valueBytes: Int?, headers: [RecordHeader]) -> Int {
        RecordBatchBuilder.encodedRecordBytes(
            keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, timestampDelta: 1 << 40, offsetDelta: 1 << 30)
    }
}

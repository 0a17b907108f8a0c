import NIOCore
import SpoolRecords

/// Transaction markers: a control batch (attributes transactional | control) of one
/// record whose key is {version 0, type: 0 ABORT / 1 COMMIT} and whose value is
/// {version 0, coordinator epoch}. Control batches take an offset and are never
/// delivered to applications (clients skip them).
enum ControlBatch {
    static let transactionalAttribute: Int16 = 0x10
    static let controlAttribute: Int16 = 0x20

    /// A COMMIT or ABORT marker of `producerId`/`epoch`.
    static func marker(commit: Bool, producerId: Int64, producerEpoch: Int16, coordinatorEpoch: Int32 = 0,
                       timestamp: Int64) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(producerId: producerId, producerEpoch: producerEpoch, baseSequence: -1, initialCapacity: 64)
        var key = ByteBuffer()
        key.writeInteger(Int16(0))
        key.writeInteger(Int16(commit ? 1 : 0))
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(coordinatorEpoch)
        builder.append(key: key, value: value, timestamp: timestamp)
        var batch = try builder.build()
        // Set the control and transactional bits, then the CRC again.
        let start = batch.readerIndex
        let attributes: Int16 = batch.getInteger(at: start + RecordBatchHeader.Position.attributes)!
        batch.setInteger(attributes | transactionalAttribute | controlAttribute, at: start + RecordBatchHeader.Position.attributes)
        RecordBatch.writeCRC(in: &batch, at: start)
        return batch
    }

    /// Whether a control batch's first record key says COMMIT (nil: not a marker).
    static func isCommit(keyType: Int16) -> Bool { keyType == 1 }
}

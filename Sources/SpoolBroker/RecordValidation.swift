import NIOCore
import NIOPosix
import SpoolRecords

/// One `RecordBatchValidator` per I/O thread, so that its decompression scratch buffer
/// is reused from batch to batch without a lock.
enum RecordValidation {
    /// Only ever touched by the thread it belongs to.
    final class Scratch: @unchecked Sendable {
        var validator = RecordBatchValidator()
    }

    private static let perThread = ThreadSpecificVariable<Scratch>()

    /// Walks every record of `produced` (found in `buffer`) with this thread's validator.
    static func validate(_ buffer: ByteBuffer, _ produced: ProducedBatches, limits: RecordBatchValidator.Limits, nowMillis: Int64) throws {
        let scratch: Scratch
        if let existing = perThread.currentValue {
            scratch = existing
        } else {
            scratch = Scratch()
            perThread.currentValue = scratch
        }
        try scratch.validator.validate(buffer, produced, limits: limits, nowMillis: nowMillis)
    }
}

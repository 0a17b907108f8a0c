import NIOConcurrencyHelpers
import NIOCore
import SpoolRecords
import SpoolStorage

/// Builds batches from loose records (ProduceRecords) for writers that cannot batch.
///
/// Records are appended per partition into an open `RecordBatchBuilder` with the
/// topic's codec; a batch closes when it reaches `maxBatchBytes` or when its
/// linger time (the topic's `linger.ms`) runs out, is appended to the log once,
/// and every record in it learns its offset. Memory is bounded by
/// `maxBatchBytes` per partition with open records.
final class RecordAccumulator: @unchecked Sendable {
    typealias Completion = @Sendable (Result<Int64, Error>) -> Void

    struct Open {
        var builder: RecordBatchBuilder
        var completions: [Completion]
        var lingerTask: Scheduled<Void>?
    }

    let maxBatchBytes: Int
    /// Appends a closed batch to the log (set by the broker).
    var sink: (@Sendable (TopicPartition, ByteBuffer) throws -> AppendResult)?
    private let open = NIOLockedValueBox<[TopicPartition: Open]>([:])

    init(maxBatchBytes: Int) {
        self.maxBatchBytes = maxBatchBytes
    }

    /// Adds one record; `completion` gets its offset (or the error) once its batch is appended.
    func add(
        _ tp: TopicPartition, codec: CompressionCodec, lingerMillis: Int64, key: [UInt8]?, value: [UInt8]?,
        headers: [RecordHeader], timestamp: Int64, eventLoop: EventLoop, completion: @escaping Completion
    ) {
        let closed: (ByteBuffer?, [Completion], Error?)? = open.withLockedValue { all in
            // Taken out while appending, so the builder's buffer is not shared (no copy-on-write).
            var entry = all.removeValue(forKey: tp) ?? Open(builder: RecordBatchBuilder(codec: codec), completions: [], lingerTask: nil)
            entry.builder.append(key: key, value: value, headers: headers, timestamp: timestamp)
            entry.completions.append(completion)
            if entry.builder.uncompressedBytes >= maxBatchBytes || lingerMillis == 0 {
                entry.lingerTask?.cancel()
                do { return (try entry.builder.build(), entry.completions, nil) } catch { return (nil, entry.completions, error) }
            }
            if entry.lingerTask == nil {
                entry.lingerTask = eventLoop.scheduleTask(in: .milliseconds(lingerMillis)) { [self] in self.flush(tp) }
            }
            all[tp] = entry
            return nil
        }
        if let (batch, completions, error) = closed { deliver(tp, batch, completions, error) }
    }

    /// Closes and appends the open batch of `tp`, if any.
    func flush(_ tp: TopicPartition) {
        let closed: (ByteBuffer?, [Completion], Error?)? = open.withLockedValue { all in
            guard let entry = all.removeValue(forKey: tp) else { return nil }
            entry.lingerTask?.cancel()
            do { return (try entry.builder.build(), entry.completions, nil) } catch { return (nil, entry.completions, error) }
        }
        if let (batch, completions, error) = closed { deliver(tp, batch, completions, error) }
    }

    func flushAll() {
        for tp in open.withLockedValue({ Array($0.keys) }) { flush(tp) }
    }

    private func deliver(_ tp: TopicPartition, _ batch: ByteBuffer?, _ completions: [Completion], _ error: Error?) {
        guard let batch, error == nil, let sink else {
            completions.forEach { $0(.failure(error ?? StorageError(.closed, "broker is shutting down"))) }
            return
        }
        do {
            let result = try sink(tp, batch)
            for (i, completion) in completions.enumerated() { completion(.success(result.baseOffset + Int64(i))) }
        } catch {
            completions.forEach { $0(.failure(error)) }
        }
    }
}

import NIOConcurrencyHelpers
import NIOCore
import SpoolRecords
import SpoolStorage

/// Builds batches from loose records (ProduceRecords) for writers that cannot batch.
///
/// Records are appended per partition into an open `RecordBatchBuilder` with the
/// topic's codec; a batch closes when it reaches `maxBatchBytes` or when its
/// linger time (the topic's `linger.ms`) runs out. A closed batch goes to the `sink`
/// (the broker's I/O pool, which compresses and appends it) *inside* the lock that
/// closed it, so batches of one partition reach the sink in the order they closed,
/// whichever event loops added their records. Memory is bounded by `maxBatchBytes` per
/// partition with open records.
final class RecordAccumulator: @unchecked Sendable {
    typealias Completion = @Sendable (Result<Int64, Error>) -> Void
    /// Takes a closed batch: builds (compresses) and appends it, then calls the delivery
    /// with the append's result. Must only enqueue: it is called under the accumulator's lock.
    typealias Sink = @Sendable (TopicPartition, RecordBatchBuilder, @escaping @Sendable (Result<AppendResult, Error>) -> Void) -> Void

    struct Open {
        var builder: RecordBatchBuilder
        var completions: [Completion]
        var lingerTask: Scheduled<Void>?
    }

    let maxBatchBytes: Int
    /// Set by the broker before the first record.
    var sink: Sink?
    private let open = NIOLockedValueBox<[TopicPartition: Open]>([:])

    init(maxBatchBytes: Int) {
        self.maxBatchBytes = maxBatchBytes
    }

    /// Adds one record; `completion` gets its offset (or the error) once its batch is appended.
    func add(
        _ tp: TopicPartition, codec: CompressionCodec, lingerMillis: Int64, key: [UInt8]?, value: [UInt8]?,
        headers: [RecordHeader], timestamp: Int64, eventLoop: EventLoop, completion: @escaping Completion
    ) {
        open.withLockedValue { all in
            // Taken out while appending, so the builder's buffer is not shared (no copy-on-write).
            var entry = all.removeValue(forKey: tp) ?? Open(builder: RecordBatchBuilder(codec: codec), completions: [], lingerTask: nil)
            entry.builder.append(key: key, value: value, headers: headers, timestamp: timestamp)
            entry.completions.append(completion)
            if entry.builder.uncompressedBytes >= maxBatchBytes || lingerMillis == 0 {
                entry.lingerTask?.cancel()
                close(tp, entry)
                return
            }
            if entry.lingerTask == nil {
                entry.lingerTask = eventLoop.scheduleTask(in: .milliseconds(lingerMillis)) { [self] in self.flush(tp) }
            }
            all[tp] = entry
        }
    }

    /// Closes the open batch of `tp`, if any, and hands it to the sink.
    func flush(_ tp: TopicPartition) {
        open.withLockedValue { all in
            guard let entry = all.removeValue(forKey: tp) else { return }
            entry.lingerTask?.cancel()
            close(tp, entry)
        }
    }

    func flushAll() {
        for tp in open.withLockedValue({ Array($0.keys) }) { flush(tp) }
    }

    /// Called under the lock: enqueues the batch; completions run when the append is done.
    private func close(_ tp: TopicPartition, _ entry: Open) {
        let completions = entry.completions
        guard let sink else {
            completions.forEach { $0(.failure(StorageError(.closed, "broker is shutting down"))) }
            return
        }
        sink(tp, entry.builder) { result in
            switch result {
            case .success(let appended):
                for (i, completion) in completions.enumerated() { completion(.success(appended.baseOffset + Int64(i))) }
            case .failure(let error):
                completions.forEach { $0(.failure(error)) }
            }
        }
    }
}

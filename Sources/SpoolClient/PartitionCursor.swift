import Synchronization

/// One assigned partition inside a consumer: the position the application has reached
/// (next offset to deliver), where the next fetch starts, and what the last fetch said
/// about the log. `position` is atomic so that delivering a record costs one store.
@usableFromInline
final class PartitionCursor: Sendable {
    @usableFromInline let topic: String
    @usableFromInline let partition: Int32
    /// Next offset to hand to the application: moves when a record is delivered.
    @usableFromInline let position: Atomic<Int64>
    /// Bumped by every seek: buffered batches of an older generation are dropped.
    @usableFromInline let generation: Atomic<Int>
    /// Next offset to fetch (ahead of `position` while fetched records wait in the buffer).
    let fetchOffset: Atomic<Int64>
    /// The log's end and start as of the last fetch (-1 until known).
    let highWatermark = Atomic<Int64>(-1)
    let logStartOffset = Atomic<Int64>(-1)

    init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.position = Atomic(offset)
        self.fetchOffset = Atomic(offset)
        self.generation = Atomic(0)
    }

    /// Moves both the position and the fetch offset, and drops what was buffered.
    func seek(to offset: Int64) {
        generation.add(1, ordering: .sequentiallyConsistent)
        position.store(offset, ordering: .sequentiallyConsistent)
        fetchOffset.store(offset, ordering: .sequentiallyConsistent)
    }

    var name: String { "\(topic)-\(partition)" }
}

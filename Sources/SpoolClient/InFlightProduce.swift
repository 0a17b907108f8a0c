import NIOCore

/// One Produce request from planning to outcome: the batches of one topic it
/// carries, per partition in request order, and the payload they were sealed into.
final class InFlightProduce: @unchecked Sendable {
    let topic: Int
    let name: String
    /// The broker it goes to (the partitions' leader when planned).
    let node: Int32
    var entries: [(partition: Int32, batches: [ProducerBatch])] = []
    /// The request's payload; back to the producer's pool once every batch is delivered.
    var payload = ByteBuffer()
    /// Set (under the producer's lock) when the outcome is applied, so that it is applied once.
    var finished = false

    init(topic: Int, name: String, node: Int32) {
        self.topic = topic
        self.name = name
        self.node = node
    }

    /// Upper bound of the payload: every batch at its worst-case size.
    var payloadBytesMax: Int {
        entries.reduce(0) { sum, entry in entry.batches.reduce(sum) { $0 + $1.wireBytesMax } }
    }

    /// The earliest deadline of its batches: past it the request is abandoned.
    var deadline: NIODeadline {
        entries.lazy.flatMap(\.batches).map(\.deadline).min() ?? .distantFuture
    }
}

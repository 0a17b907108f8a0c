import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol
import SpoolRecords

/// Where a produced record landed.
public struct RecordMetadata: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Producer settings, named after Kafka's.
public struct ProducerConfig: Sendable {
    /// Close a partition's batch at this many (uncompressed) bytes. Kafka: `batch.size`.
    public var batchBytes = 64 << 10
    /// Wait this long for more records before sending a batch. Kafka: `linger.ms`.
    public var lingerMillis = 5
    public var compression: CompressionCodec = .lz4
    public var acks: Spool_V1_Acks = .leader
    /// Produce requests in flight at once. Kafka: `max.in.flight.requests.per.connection`.
    public var maxInFlightRequests = 8
    /// Record bytes buffered (open batches and requests in flight) before `send` waits. Kafka: `buffer.memory`.
    public var bufferBytes = 32 << 20

    public init() {}
}

/// Batches records per partition and sends them to the broker.
///
/// ```swift
/// let producer = SpoolProducer(connection: connection)
/// let where = try await producer.send(topic: "events", key: Array("user-1".utf8), value: Array("hello".utf8))
/// try await producer.flush()
/// ```
/// Keys pick their partition with Kafka's murmur2 partitioner; keyless records
/// stick to one partition until its batch is sent (sticky partitioning).
public final class SpoolProducer: Sendable {
    /// Called once per record with where it landed or why it failed, on a client thread.
    public typealias Completion = @Sendable (Result<RecordMetadata, Error>) -> Void
    typealias Waiter = Completion

    struct OpenBatch {
        var builder: RecordBatchBuilder
        var waiters: [Waiter]
        var lingerArmed = false
        var generation = 0
        /// Buffer memory held by the records of this batch.
        var reservedBytes = 0
    }

    struct State {
        var partitionCounts: [String: Int32] = [:]
        var sticky: [String: Int32] = [:]
        var open: [TopicPartitionKey: OpenBatch] = [:]
        var inFlight = 0
        var bufferedBytes = 0
        var slotWaiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
        var generation = 0
    }

    struct TopicPartitionKey: Hashable {
        var topic: String
        var partition: Int32
    }

    public let connection: SpoolConnection
    public let config: ProducerConfig
    private let state = NIOLockedValueBox(State())
    private let admin: SpoolAdmin

    public init(connection: SpoolConnection, config: ProducerConfig = ProducerConfig()) {
        self.connection = connection
        self.config = config
        self.admin = SpoolAdmin(connection)
    }

    /// Sends one record; returns once the broker acknowledged it (per `acks`).
    public func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil
    ) async throws -> RecordMetadata {
        let count = try await partitionCount(topic)
        let size = (key?.count ?? 0) + (value?.count ?? 0) + 16
        await reserveMemory(size)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RecordMetadata, Error>) in
            enqueue(topic: topic, partitions: count, partition: partition, key: key, value: value, headers: headers,
                    timestamp: timestamp ?? Self.nowMillis(), size: size) { continuation.resume(with: $0) }
        }
    }

    /// Queues one record and returns as soon as it is buffered (it waits only while
    /// `bufferBytes` are in use); `completion` learns the outcome. No task or
    /// continuation per record: the fast path for load generators and pipelines.
    public func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil, completion: @escaping Completion
    ) async throws {
        let count = try await partitionCount(topic)
        let size = (key?.count ?? 0) + (value?.count ?? 0) + 16
        await reserveMemory(size)
        enqueue(topic: topic, partitions: count, partition: partition, key: key, value: value, headers: headers,
                timestamp: timestamp ?? Self.nowMillis(), size: size, completion: completion)
    }

    private func enqueue(
        topic: String, partitions count: Int32, partition: Int32?, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader],
        timestamp ts: Int64, size: Int, completion waiter: @escaping Completion
    ) {
        let action: (full: (TopicPartitionKey, OpenBatch)?, arm: (TopicPartitionKey, Int)?, refused: Bool) = state.withLockedValue { s in
            if s.closed { return (nil, nil, true) }
            let p: Int32
            if let partition {
                p = partition
            } else if let key {
                p = KafkaPartitioner.partition(forKey: key, partitions: count)
            } else {
                p = s.sticky[topic] ?? Int32.random(in: 0..<count)
                s.sticky[topic] = p
            }
            let k = TopicPartitionKey(topic: topic, partition: p)
            // Take the batch out of the dictionary while appending: a copy left behind would
            // make every append copy the whole buffer (copy-on-write).
            var batch = s.open.removeValue(forKey: k)
                ?? OpenBatch(builder: RecordBatchBuilder(codec: config.compression, initialCapacity: config.batchBytes + 1024), waiters: [])
            batch.builder.append(key: key, value: value, headers: headers, timestamp: ts)
            batch.waiters.append(waiter)
            batch.reservedBytes += size
            if batch.builder.uncompressedBytes >= config.batchBytes {
                s.open.removeValue(forKey: k)
                if key == nil && partition == nil { s.sticky[topic] = (p + 1) % count }
                return ((k, batch), nil, false)
            }
            var arm: (TopicPartitionKey, Int)?
            if !batch.lingerArmed {
                batch.lingerArmed = true
                s.generation &+= 1
                batch.generation = s.generation
                arm = (k, batch.generation)
            }
            s.open[k] = batch
            return (nil, arm, false)
        }
        if action.refused {
            release(slot: false, bytes: size)
            waiter(.failure(SpoolStatusError(.cancelled, "producer is closed")))
        } else if let (k, batch) = action.full {
            Task { await self.dispatch(k, batch) }
        } else if let (k, generation) = action.arm {
            let linger = config.lingerMillis
            Task {
                if linger > 0 { try? await Task.sleep(for: .milliseconds(linger)) }
                let batch = self.state.withLockedValue { s -> OpenBatch? in
                    guard let b = s.open[k], b.generation == generation else { return nil }
                    s.open.removeValue(forKey: k)
                    if s.sticky[k.topic] == k.partition { s.sticky[k.topic] = (k.partition + 1) % count }
                    return b
                }
                if let batch { await self.dispatch(k, batch) }
            }
        }
    }

    /// Sends every open batch now and waits for their acknowledgements.
    public func flush() async throws {
        let batches = state.withLockedValue { s -> [(TopicPartitionKey, OpenBatch)] in
            defer { s.open.removeAll() }
            return Array(s.open)
        }
        await withTaskGroup(of: Void.self) { group in
            for (k, b) in batches { group.addTask { await self.dispatch(k, b) } }
        }
        // Wait for requests already in flight.
        while state.withLockedValue({ $0.inFlight > 0 }) {
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Flushes and refuses further sends.
    public func close() async throws {
        try await flush()
        state.withLockedValue { $0.closed = true }
    }

    private func partitionCount(_ topic: String) async throws -> Int32 {
        if let n = state.withLockedValue({ $0.partitionCounts[topic] }) { return n }
        let description = try await admin.describeTopic(topic)
        let n = Int32(description.partitions.count)
        state.withLockedValue { $0.partitionCounts[topic] = n }
        return n
    }

    private func reserveMemory(_ bytes: Int) async {
        while true {
            let ok = state.withLockedValue { s -> Bool in
                if s.bufferedBytes + bytes <= config.bufferBytes || s.bufferedBytes == 0 {
                    s.bufferedBytes += bytes
                    return true
                }
                return false
            }
            if ok { return }
            await withCheckedContinuation { c in state.withLockedValue { $0.slotWaiters.append(c) } }
        }
    }

    private func acquireSlot() async {
        while true {
            let ok = state.withLockedValue { s -> Bool in
                if s.inFlight < config.maxInFlightRequests { s.inFlight += 1; return true }
                return false
            }
            if ok { return }
            await withCheckedContinuation { c in state.withLockedValue { $0.slotWaiters.append(c) } }
        }
    }

    private func release(slot: Bool, bytes: Int) {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            if slot { s.inFlight -= 1 }
            s.bufferedBytes -= bytes
            defer { s.slotWaiters.removeAll() }
            return s.slotWaiters
        }
        waiters.forEach { $0.resume() }
    }

    private func dispatch(_ k: TopicPartitionKey, _ batch: OpenBatch) async {
        let reserved = batch.reservedBytes
        await acquireSlot()
        defer { release(slot: true, bytes: reserved) }
        do {
            let bytes = try batch.builder.build()
            var request = Spool_V1_ProduceRequest()
            request.topic = k.topic
            request.acks = config.acks
            var p = Spool_V1_ProducePartition()
            p.partition = k.partition
            p.bytes = UInt32(bytes.readableBytes)
            request.partitions = [p]
            let response: Spool_V1_ProduceResponse = try await connection.call(.produce, request, payload: bytes)
            guard let result = response.results.first else { throw SpoolStatusError(.internal, "empty produce response") }
            guard result.code == .ok else { throw SpoolStatusError(result.code, result.message) }
            for (i, waiter) in batch.waiters.enumerated() {
                waiter(.success(RecordMetadata(topic: k.topic, partition: k.partition, offset: result.baseOffset + Int64(i))))
            }
        } catch {
            batch.waiters.forEach { $0(.failure(error)) }
        }
    }

    static func nowMillis() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

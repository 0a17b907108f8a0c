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

    struct OpenBatch {
        var builder: RecordBatchBuilder
        var completions: [Completion] = []
        var generation = 0
        /// Buffer memory held by the records of this batch.
        var reservedBytes = 0
    }

    /// Per-topic state, found with one dictionary lookup per record.
    struct TopicState {
        var partitions: Int32
        /// The partition keyless records stick to until its batch is sent.
        var sticky: Int32
        /// Open batch per partition (index = partition).
        var open: [OpenBatch?]
    }

    struct State {
        var topics: [String: TopicState] = [:]
        var inFlight = 0
        var bufferedBytes = 0
        /// Woken (all) whenever a request finishes: senders waiting for memory, flushes waiting for idle.
        var waiters: [@Sendable () -> Void] = []
        var closed = false
        var generation = 0
        /// Closed batches waiting to be sent, in the order they closed.
        var ready: [(topic: String, partition: Int32, batch: OpenBatch)] = []
        var readyHead = 0
        /// One caller at a time moves batches from `ready` onto the wire, so that
        /// batches leave (and are appended) in the order they closed.
        var draining = false
        /// Builders of sent batches, kept with their buffers to avoid fresh allocations
        /// (and page faults) for every batch.
        var spareBuilders: [RecordBatchBuilder] = []
    }

    enum Enqueued {
        case buffered
        case armLinger(partition: Int32, generation: Int)
        case full
        case needsTopic
        case needsMemory
        case closed
        case rejected(Error)
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
        let box = ResultBox()
        try await send(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp) { box.complete($0) }
        return try await box.value
    }

    /// Queues one record and returns as soon as it is buffered (it waits only while
    /// `bufferBytes` are in use, or to learn a new topic's partitions); `completion`
    /// learns the outcome. No task or continuation per record: the fast path for
    /// load generators and pipelines.
    public func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [],
        timestamp: Int64? = nil, completion: @escaping Completion
    ) async throws {
        let size = (key?.count ?? 0) + (value?.count ?? 0) + 16
        let ts = timestamp ?? Self.nowMillis()
        while true {
            switch enqueue(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: ts, size: size, completion: completion) {
            case .buffered:
                return
            case .armLinger(let p, let generation):
                armLinger(topic: topic, partition: p, generation: generation)
                return
            case .full:
                drain()
                return
            case .needsTopic:
                try await learnTopic(topic)
            case .needsMemory:
                await waitForRoom()
            case .closed:
                throw SpoolStatusError(.cancelled, "producer is closed")
            case .rejected(let error):
                completion(.failure(error))
                return
            }
        }
    }

    private func enqueue(
        topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader], timestamp: Int64, size: Int,
        completion: @escaping Completion
    ) -> Enqueued {
        state.withLockedValue { s in
            if s.closed { return .closed }
            guard var t = s.topics.removeValue(forKey: topic) else { return .needsTopic }
            defer { s.topics[topic] = t }
            guard s.bufferedBytes + size <= config.bufferBytes || s.bufferedBytes == 0 else { return .needsMemory }
            let p: Int32
            if let partition {
                guard partition >= 0 && partition < t.partitions else {
                    return .rejected(SpoolStatusError(.notFound, "topic \(topic) has partitions 0..<\(t.partitions), not \(partition)"))
                }
                p = partition
            } else if let key {
                p = KafkaPartitioner.partition(forKey: key, partitions: t.partitions)
            } else {
                p = t.sticky
            }
            s.bufferedBytes += size
            // Taken out while appending: a copy left in the array would make every append
            // copy the whole buffer (copy-on-write).
            var batch = t.open[Int(p)].take()
                ?? OpenBatch(builder: s.spareBuilders.popLast()
                    ?? RecordBatchBuilder(codec: config.compression, initialCapacity: config.batchBytes + 1024))
            let isNew = batch.completions.isEmpty
            batch.builder.append(key: key, value: value, headers: headers, timestamp: timestamp)
            batch.completions.append(completion)
            batch.reservedBytes += size
            if batch.builder.uncompressedBytes >= config.batchBytes {
                if key == nil && partition == nil { t.sticky = (p + 1) % t.partitions }
                // Queued in the same critical section that closed it: batches of a partition
                // enter the send queue in the order they closed.
                s.ready.append((topic, p, batch))
                return .full
            }
            if isNew {
                s.generation &+= 1
                batch.generation = s.generation
                t.open[Int(p)] = batch
                return .armLinger(partition: p, generation: batch.generation)
            }
            t.open[Int(p)] = batch
            return .buffered
        }
    }

    /// Sends the batch of `partition` after `linger.ms`, unless it was sent (full) meanwhile.
    private func armLinger(topic: String, partition: Int32, generation: Int) {
        let linger = config.lingerMillis
        Task {
            if linger > 0 { try? await Task.sleep(for: .milliseconds(linger)) }
            let queued = state.withLockedValue { s -> Bool in
                guard var t = s.topics[topic], let b = t.open[Int(partition)], b.generation == generation else { return false }
                t.open[Int(partition)] = nil
                if t.sticky == partition { t.sticky = (partition + 1) % t.partitions }
                s.topics[topic] = t
                s.ready.append((topic, partition, b))
                return true
            }
            if queued { drain() }
        }
    }

    /// Sends every open batch now and waits until no request is in flight.
    public func flush() async throws {
        state.withLockedValue { s in
            for (topic, var t) in s.topics {
                for p in t.open.indices { if let b = t.open[p].take() { s.ready.append((topic, Int32(p), b)) } }
                s.topics[topic] = t
            }
        }
        drain()
        // Wait until nothing is queued or in flight; every finished request wakes the waiters.
        while true {
            let idle = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let idleNow = state.withLockedValue { s -> Bool in
                    if s.inFlight == 0 && s.readyHead == s.ready.count { return true }
                    s.waiters.append { c.resume(returning: false) }
                    return false
                }
                if idleNow { c.resume(returning: true) }
            }
            if idle { return }
        }
    }

    /// Flushes and refuses further sends.
    public func close() async throws {
        try await flush()
        state.withLockedValue { $0.closed = true }
    }

    private func learnTopic(_ topic: String) async throws {
        let description = try await admin.describeTopic(topic)
        let n = Int32(description.partitions.count)
        guard n > 0 else { throw SpoolStatusError(.failedPrecondition, "topic \(topic) has no partitions") }
        state.withLockedValue { s in
            if s.topics[topic] == nil {
                s.topics[topic] = TopicState(partitions: n, sticky: Int32.random(in: 0..<n), open: Array(repeating: nil, count: Int(n)))
            }
        }
    }

    /// Waits until buffer memory may have been released.
    private func waitForRoom() async {
        await withCheckedContinuation { c in
            let now = state.withLockedValue { s -> Bool in
                // Room may have appeared between the failed attempt and this wait.
                if s.bufferedBytes == 0 || s.inFlight == 0 && s.readyHead == s.ready.count { return true }
                s.waiters.append { c.resume() }
                return false
            }
            if now { c.resume() }
        }
    }

    /// Moves ready batches onto the wire in order while in-flight slots are free.
    /// Only one caller drains at a time; the request of each batch is written before
    /// the next one's, and the broker appends a connection's requests in order.
    private func drain() {
        guard state.withLockedValue({ s -> Bool in
            if s.draining { return false }
            s.draining = true
            return true
        }) else { return }
        while true {
            let next = state.withLockedValue { s -> (String, Int32, OpenBatch)? in
                guard s.inFlight < config.maxInFlightRequests, s.readyHead < s.ready.count else {
                    s.draining = false
                    return nil
                }
                let item = s.ready[s.readyHead]
                s.readyHead += 1
                if s.readyHead > 16 && s.readyHead * 2 > s.ready.count {
                    s.ready.removeFirst(s.readyHead)
                    s.readyHead = 0
                }
                s.inFlight += 1
                return (item.topic, item.partition, item.batch)
            }
            guard let (topic, partition, batch) = next else { break }
            send(topic, partition, batch)
        }
        // A slot may have been released while the flag was still held: look again.
        let more = state.withLockedValue { s in !s.draining && s.inFlight < config.maxInFlightRequests && s.readyHead < s.ready.count }
        if more { drain() }
    }

    private func send(_ topic: String, _ partition: Int32, _ batch: OpenBatch) {
        let pending: SpoolConnection.PendingReply
        do {
            let bytes = try batch.builder.build()
            recycle(batch.builder)
            var request = Spool_V1_ProduceRequest()
            request.topic = topic
            request.acks = config.acks
            var p = Spool_V1_ProducePartition()
            p.partition = partition
            p.bytes = UInt32(bytes.readableBytes)
            request.partitions = [p]
            pending = try connection.startCall(.produce, request, payload: bytes)
        } catch {
            finish(batch, .failure(error), topic: topic, partition: partition)
            return
        }
        Task {
            do {
                let reply = try await pending.reply
                let response = try ProtoCodec.decode(Spool_V1_ProduceResponse.self, from: reply.message)
                guard let result = response.results.first else { throw SpoolStatusError(.internal, "empty produce response") }
                guard result.code == .ok else { throw SpoolStatusError(result.code, result.message) }
                finish(batch, .success(result.baseOffset), topic: topic, partition: partition)
            } catch {
                finish(batch, .failure(error), topic: topic, partition: partition)
            }
        }
    }

    /// Keeps a sent batch's builder for reuse (bounded).
    private func recycle(_ builder: RecordBatchBuilder) {
        var builder = builder
        builder.reset()
        state.withLockedValue { s in
            if s.spareBuilders.count < config.maxInFlightRequests { s.spareBuilders.append(builder) }
        }
    }

    /// Completes a batch's records, frees its memory and slot, and sends more.
    private func finish(_ batch: OpenBatch, _ outcome: Result<Int64, Error>, topic: String, partition: Int32) {
        switch outcome {
        case .success(let base):
            for (i, completion) in batch.completions.enumerated() {
                completion(.success(RecordMetadata(topic: topic, partition: partition, offset: base + Int64(i))))
            }
        case .failure(let error):
            batch.completions.forEach { $0(.failure(error)) }
        }
        let waiters = state.withLockedValue { s -> [@Sendable () -> Void] in
            s.inFlight -= 1
            s.bufferedBytes -= batch.reservedBytes
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        waiters.forEach { $0() }
        drain()
    }

    static func nowMillis() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

/// Holds one send's outcome until its awaiting caller collects it.
final class ResultBox: Sendable {
    private let state = NIOLockedValueBox<(result: Result<RecordMetadata, Error>?, waiter: CheckedContinuation<RecordMetadata, Error>?)>((nil, nil))

    func complete(_ result: Result<RecordMetadata, Error>) {
        let waiter = state.withLockedValue { s -> CheckedContinuation<RecordMetadata, Error>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.result = result
            return nil
        }
        waiter?.resume(with: result)
    }

    var value: RecordMetadata {
        get async throws {
            try await withCheckedThrowingContinuation { c in
                let ready = state.withLockedValue { s -> Result<RecordMetadata, Error>? in
                    if let r = s.result { return r }
                    s.waiter = c
                    return nil
                }
                if let ready { c.resume(with: ready) }
            }
        }
    }
}

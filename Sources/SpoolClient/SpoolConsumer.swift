import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol
import SpoolRecords

/// A record as a consumer sees it.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
}

/// Where a consumer starts in a partition.
public enum StartPosition: Sendable, Equatable {
    case beginning, end
    case offset(Int64)
    /// The first record with a timestamp ≥ this (Unix milliseconds).
    case timestamp(Int64)
    /// The group's committed offset, or `fallback` if it has none.
    indirect case committed(fallback: StartPosition)
}

/// Reads assigned partitions with long-polling fetches and hands out records in
/// offset order per partition, as an `AsyncSequence`.
///
/// ```swift
/// let consumer = SpoolConsumer(connection: connection, group: "billing")
/// try await consumer.assign(topic: "events", partitions: [0, 1], from: .committed(fallback: .beginning))
/// for try await record in consumer.records() { … ; try await consumer.commit() }
/// ```
public final class SpoolConsumer: Sendable {
    public let connection: SpoolConnection
    public let group: String?
    public let maxWaitMillis: UInt32
    public let maxBytesPerPartition: UInt32
    /// Where to go when a position falls outside the log (retention deleted it, or it
    /// is past the end): Kafka's `auto.offset.reset`. nil: fail with OUT_OF_RANGE.
    public let autoOffsetReset: StartPosition?
    private let admin: SpoolAdmin
    private let positions = NIOLockedValueBox<[PartitionKey: Int64]>([:])
    private let highWatermarks = NIOLockedValueBox<[PartitionKey: Int64]>([:])

    // MARK: Group membership (SpoolConsumer+Subscribe.swift, GroupMembership.swift)

    /// The group membership `subscribe` started; nil for a consumer that assigns itself partitions.
    let membershipBox = NIOLockedValueBox<GroupMembership?>(nil)

    /// Removes partitions from the assignment (a rebalance gave them to another member).
    func dropPartitions(_ partitions: [String: [Int32]]) {
        let keys = partitions.flatMap { topic, ps in ps.map { PartitionKey(topic: topic, partition: $0) } }
        positions.withLockedValue { p in for key in keys { p[key] = nil } }
        highWatermarks.withLockedValue { h in for key in keys { h[key] = nil } }
    }

    struct PartitionKey: Hashable, Comparable {
        var topic: String
        var partition: Int32
        static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    }

    public init(
        connection: SpoolConnection, group: String? = nil, maxWaitMillis: UInt32 = 500, maxBytesPerPartition: UInt32 = 1 << 20,
        autoOffsetReset: StartPosition? = nil
    ) {
        self.connection = connection
        self.group = group
        self.autoOffsetReset = autoOffsetReset
        self.maxWaitMillis = maxWaitMillis
        self.maxBytesPerPartition = maxBytesPerPartition
        self.admin = SpoolAdmin(connection)
    }

    /// Assigns partitions of `topic` (all of them when `partitions` is nil) starting at `from`.
    public func assign(topic: String, partitions: [Int32]? = nil, from start: StartPosition = .beginning) async throws {
        var all = partitions ?? []
        if partitions == nil { all = try await admin.describeTopic(topic).partitions.map(\.partition) }
        var committed: [Int32: Int64] = [:]
        if case .committed = start {
            guard let group else { throw SpoolStatusError(.invalidArgument, "resuming from committed offsets needs a group id") }
            for o in try await admin.committedOffsets(group: group, topics: [topic]) { committed[o.partition] = o.offset }
        }
        for p in all {
            try await seek(topic: topic, partition: p, to: start, committed: committed[p])
        }
    }

    /// Moves the position of one partition.
    public func seek(topic: String, partition: Int32, to start: StartPosition, committed: Int64? = nil) async throws {
        let offset: Int64
        switch start {
        case .beginning: offset = try await admin.listOffset(topic: topic, partition: partition, .earliest)
        case .end: offset = try await admin.listOffset(topic: topic, partition: partition, .latest)
        case .offset(let o): offset = o
        case .timestamp(let ts):
            let found = try await admin.listOffset(topic: topic, partition: partition, .timestamp(ts))
            offset = found >= 0 ? found : try await admin.listOffset(topic: topic, partition: partition, .latest)
        case .committed(let fallback):
            if let committed {
                offset = committed
            } else {
                return try await seek(topic: topic, partition: partition, to: fallback)
            }
        }
        positions.withLockedValue { $0[PartitionKey(topic: topic, partition: partition)] = offset }
    }

    /// The next offset to read, per assigned partition.
    public var position: [(topic: String, partition: Int32, offset: Int64)] {
        positions.withLockedValue { $0.sorted { $0.key < $1.key }.map { ($0.key.topic, $0.key.partition, $0.value) } }
    }

    /// True once every assigned partition's position has reached the high watermark
    /// its last fetch reported (the consumer has read everything that was there).
    public var isAtEnd: Bool {
        let hw = highWatermarks.withLockedValue { $0 }
        return positions.withLockedValue { p in
            p.allSatisfy { key, offset in hw[key].map { offset >= $0 } ?? false }
        }
    }

    /// Commits the current positions for the group (as a member of its generation when subscribed).
    public func commit() async throws {
        if let membership = membershipBox.withLockedValue({ $0 }) { return try await membership.commit(position) }
        guard let group else { throw SpoolStatusError(.invalidArgument, "commit needs a group id") }
        try await admin.commit(group: group, offsets: position)
    }

    /// A fetched batch and the partition it came from; its records are decoded on demand.
    public struct FetchedBatch: Sendable {
        public var topic: String
        public var partition: Int32
        public var batch: RecordBatch
        /// Records before this offset were already delivered (a batch may start before the position).
        public var skipBelow: Int64
    }

    /// One fetch round over every assigned partition, as whole CRC-checked batches
    /// (not decompressed): the fast path for consumers that handle batches themselves.
    public func pollBatches() async throws -> [FetchedBatch] {
        let snapshot = positions.withLockedValue { $0 }
        if let membership = membershipBox.withLockedValue({ $0 }) {
            // Subscribed: report a membership that ended; while the group gives this member nothing, idle like an empty long poll.
            if let failure = membership.failure { throw failure }
            if snapshot.isEmpty {
                try await Task.sleep(for: .milliseconds(Int(maxWaitMillis)))
                return []
            }
        }
        guard !snapshot.isEmpty else { throw SpoolStatusError(.failedPrecondition, "no partitions assigned") }
        var request = Spool_V1_FetchRequest()
        request.maxWaitMs = maxWaitMillis
        request.minBytes = 1
        request.partitions = snapshot.keys.sorted().map { k in
            var p = Spool_V1_FetchPartition()
            p.topic = k.topic
            p.partition = k.partition
            p.offset = snapshot[k]!
            p.maxBytes = maxBytesPerPartition
            return p
        }
        let reply = try await connection.rawCall(.fetch, request)
        let response = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: reply.message)
        var payload = reply.payload
        var out: [FetchedBatch] = []
        for result in response.partitions {
            if result.code == .outOfRange, let reset = autoOffsetReset {
                try await seek(topic: result.topic, partition: result.partition, to: reset)
                continue
            }
            guard result.code == .ok else { throw SpoolStatusError(result.code, "\(result.topic)-\(result.partition): \(result.message)") }
            guard let bytes = payload.readSlice(length: Int(result.bytes)) else {
                throw SpoolStatusError(.internal, "fetch payload shorter than its partitions declare")
            }
            let key = PartitionKey(topic: result.topic, partition: result.partition)
            highWatermarks.withLockedValue { $0[key] = result.highWatermark }
            let from = snapshot[key]!
            var next = from
            var reader = RecordBatchReader(bytes, allowPartialTail: true)
            while let batch = try reader.next() {
                guard batch.header.lastOffset >= from else { continue }
                out.append(FetchedBatch(topic: result.topic, partition: result.partition, batch: batch, skipBelow: from))
                next = max(next, batch.header.nextOffset)
            }
            if next != from {
                positions.withLockedValue { p in
                    if p[key] == from { p[key] = next }
                }
            }
        }
        return out
    }

    /// One fetch round over every assigned partition: the records it returned (possibly none).
    public func poll() async throws -> [ConsumerRecord] {
        var out: [ConsumerRecord] = []
        for fetched in try await pollBatches() {
            var decoder = try fetched.batch.recordDecoder()
            while let record = try decoder.next() {
                if record.offset < fetched.skipBelow { continue }
                out.append(ConsumerRecord(topic: fetched.topic, partition: fetched.partition, offset: record.offset,
                                          timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers))
            }
        }
        return out
    }

    /// Records from the assigned partitions, in offset order per partition, until the task is cancelled.
    public func records() -> AsyncThrowingStream<ConsumerRecord, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    while !Task.isCancelled {
                        for record in try await self.poll() { continuation.yield(record) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

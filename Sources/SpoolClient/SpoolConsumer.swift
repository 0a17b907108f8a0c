import NIOConcurrencyHelpers
import NIOCore
import SpoolProtocol
import SpoolRecords
import Synchronization

/// A partition of a topic.
public struct TopicPartition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)-\(partition)" }
}

/// Where a consumer starts in a partition.
public enum StartPosition: Sendable, Equatable {
    case beginning, end
    case offset(Int64)
    /// N records before the end (`--from -N`), never before the log's start.
    case fromEnd(Int64)
    /// The first record with a timestamp ≥ this (Unix milliseconds); the end if none.
    case timestamp(Int64)
    /// The group's committed offset, or `fallback` if it has none.
    indirect case committed(fallback: StartPosition)
}

/// Reads assigned partitions with long-polling fetches and hands records to the
/// application, at least once:
///
/// - a partition's **position** moves when a record is *delivered* (returned by `poll()`
///   or by the `records()` iterator), never when it is fetched; fetched records wait in a
///   buffer bounded by one fetch (`maxBytesPerPartition` per partition, `maxBytesPerFetch`
///   in all) and the next fetch leaves only when the buffer is drained;
/// - `commit()` writes the delivered positions; with `enableAutoCommit` they are written
///   every `autoCommitIntervalMillis` from inside the next `poll()` / iterator refill
///   (so only records the application has come back from) and on `close()`;
/// - a partition whose fetch fails does not hold back the others: their records are
///   delivered, the failure is thrown by the next poll that has nothing else to give;
/// - a broken connection (the broker restarted) is ridden out: the poll returns nothing
///   after a backoff and the next one reconnects and fetches from the same offsets.
///
/// ```swift
/// var config = ConsumerConfig(group: "billing")
/// let consumer = SpoolConsumer(connection: connection, config: config)
/// try await consumer.assign(topic: "events", from: .committed(fallback: .beginning))
/// for try await record in consumer.records() { handle(record) }
/// ```
///
/// Group membership (`subscribe`) plugs in through `assign(_:from:)` and `unassign(_:)`.
public final class SpoolConsumer: Sendable {
    /// Where each partition is fetched from: its leader (`BrokerRouter.leader(of:)`), one
    /// fetch per leader per round. Group calls and commits go to the group's coordinator
    /// (`BrokerRouter.groupCall`).
    public let router: BrokerRouter
    /// The bootstrap broker's connection (topic descriptions, FindCoordinator).
    public var connection: SpoolConnection { router.bootstrap }
    /// Made from a connection: `close()` closes the leader connections its router opened.
    let ownsRouter: Bool
    public let config: ConsumerConfig
    public var group: String? { config.group }
    let admin: SpoolAdmin
    private let state: NIOLockedValueBox<State>

    struct State {
        var cursors: [TopicPartition: PartitionCursor] = [:]
        /// Fetched batches with records not yet delivered, in fetch order.
        var buffer: [DecodedBatch] = []
        /// Per-partition failures waiting to be thrown once the buffer is drained.
        var pendingErrors: [Error] = []
        /// Positions as last committed (auto-commit sends only what changed).
        var committed: [TopicPartition: Int64] = [:]
        var lastAutoCommit = ContinuousClock.now
        var closed = false
        var metrics = ConsumerMetrics()
    }

    // MARK: Group membership (SpoolConsumer+Subscribe.swift, GroupMembership.swift)

    /// The group membership `subscribe` started; nil for a consumer that assigns itself partitions.
    let membershipBox = NIOLockedValueBox<GroupMembership?>(nil)

    /// Removes partitions from the assignment (a rebalance gave them to another member);
    /// their buffered records are dropped, their next owner reads them from the commits.
    func dropPartitions(_ partitions: [String: [Int32]]) {
        let dropped = Set(partitions.flatMap { topic, ps in ps.map { TopicPartition(topic, $0) } })
        state.withLockedValue { s in
            for tp in dropped { s.cursors[tp] = nil }
            s.buffer.removeAll { dropped.contains(TopicPartition($0.cursor.topic, $0.cursor.partition)) }
        }
    }

    /// Counters of the fetches this consumer made (Kafka's consumer fetch metrics).
    public struct ConsumerMetrics: Sendable {
        /// Fetch requests answered.
        public var fetches = 0
        /// Records and batch bytes those fetches brought.
        public var fetchedRecords = 0
        public var fetchedBytes = 0
        /// When the last fetch that brought records was answered.
        public var lastDataAt: ContinuousClock.Instant?
    }

    public var metrics: ConsumerMetrics { state.withLockedValue { $0.metrics } }

    private func count(fetched records: Int, bytes: Int) {
        state.withLockedValue { s in
            s.metrics.fetches += 1
            s.metrics.fetchedRecords += records
            s.metrics.fetchedBytes += bytes
            if records > 0 { s.metrics.lastDataAt = .now }
        }
    }

    /// A consumer over one connection: it learns the cluster from that broker and opens
    /// connections to the other leaders itself (a single broker leads everything).
    public convenience init(connection: SpoolConnection, config: ConsumerConfig) {
        self.init(router: BrokerRouter(connection: connection), config: config, ownsRouter: true)
    }

    /// A consumer that fetches each partition from its leader (`router` stays the caller's).
    public convenience init(router: BrokerRouter, config: ConsumerConfig) {
        self.init(router: router, config: config, ownsRouter: false)
    }

    /// `ownsRouter`: `close()` closes the connections the router opened (not the caller's one).
    init(router: BrokerRouter, config: ConsumerConfig, ownsRouter: Bool) {
        self.router = router
        self.ownsRouter = ownsRouter
        self.config = config
        self.admin = SpoolAdmin(router: router)
        self.state = NIOLockedValueBox(State())
    }

    /// The consumer with Kafka's defaults but these few settings.
    public convenience init(
        connection: SpoolConnection, group: String? = nil, maxWaitMillis: UInt32 = 500, maxBytesPerPartition: UInt32 = 1 << 20,
        autoOffsetReset: OffsetReset = .latest
    ) {
        var config = ConsumerConfig(group: group)
        config.maxWaitMillis = maxWaitMillis
        config.maxBytesPerPartition = maxBytesPerPartition
        config.autoOffsetReset = autoOffsetReset
        self.init(connection: connection, config: config)
    }

    // MARK: - Assignment and positions

    /// Assigns partitions of `topic` (all of them when `partitions` is nil) starting at `from`.
    public func assign(topic: String, partitions: [Int32]? = nil, from start: StartPosition = .beginning) async throws {
        var all = partitions ?? []
        if partitions == nil { all = try await admin.describeTopic(topic).partitions.map(\.partition) }
        try await assign(all.map { TopicPartition(topic, $0) }, from: start)
    }

    /// Adds partitions to the assignment, each starting at `from` (for `.committed`, the
    /// group's offset of that partition). Partitions already assigned are moved.
    public func assign(_ partitions: [TopicPartition], from start: StartPosition) async throws {
        // Learn the leaders first: positions are resolved and records fetched there.
        _ = try? await router.refresh(topics: Array(Set(partitions.map(\.topic))).sorted())
        var committed: [TopicPartition: Int64] = [:]
        if case .committed = start {
            guard let group else { throw SpoolClientError(.invalidUse, "resuming from committed offsets needs a group id") }
            let topics = Array(Set(partitions.map(\.topic))).sorted()
            for o in try await admin.committedOffsets(group: group, topics: topics) {
                committed[TopicPartition(o.topic, o.partition)] = o.offset
            }
            state.withLockedValue { s in
                for (tp, offset) in committed { s.committed[tp] = offset }
            }
        }
        for tp in partitions {
            try await seek(tp, to: start, committed: committed[tp])
        }
    }

    /// Removes partitions from the assignment (their buffered records are dropped);
    /// commits their delivered positions first when auto-commit is on.
    public func unassign(_ partitions: [TopicPartition]) async throws {
        if config.enableAutoCommit, group != nil {
            try await commit(positions: positions(of: Set(partitions)))
        }
        state.withLockedValue { s in
            for tp in partitions { s.cursors[tp] = nil }
            s.buffer.removeAll { partitions.contains(TopicPartition($0.cursor.topic, $0.cursor.partition)) }
        }
    }

    /// The assigned partitions.
    public var assignment: [TopicPartition] {
        state.withLockedValue { $0.cursors.keys.sorted() }
    }

    /// Moves the position of one partition (assigning it if needed).
    public func seek(topic: String, partition: Int32, to start: StartPosition) async throws {
        try await seek(TopicPartition(topic, partition), to: start, committed: nil)
    }

    private func seek(_ tp: TopicPartition, to start: StartPosition, committed: Int64?) async throws {
        let offset = try await resolve(tp, start, committed: committed)
        state.withLockedValue { s in
            if let cursor = s.cursors[tp] {
                cursor.seek(to: offset)
            } else {
                s.cursors[tp] = PartitionCursor(topic: tp.topic, partition: tp.partition, offset: offset)
            }
        }
    }

    /// The offset a start position names in one partition.
    private func resolve(_ tp: TopicPartition, _ start: StartPosition, committed: Int64?) async throws -> Int64 {
        switch start {
        case .beginning: return try await admin.listOffset(topic: tp.topic, partition: tp.partition, .earliest)
        case .end: return try await admin.listOffset(topic: tp.topic, partition: tp.partition, .latest)
        case .offset(let o): return o
        case .fromEnd(let n):
            let end = try await admin.listOffset(topic: tp.topic, partition: tp.partition, .latest)
            let begin = try await admin.listOffset(topic: tp.topic, partition: tp.partition, .earliest)
            return max(begin, end - n)
        case .timestamp(let ts):
            let found = try await admin.listOffset(topic: tp.topic, partition: tp.partition, .timestamp(ts))
            return found >= 0 ? found : try await admin.listOffset(topic: tp.topic, partition: tp.partition, .latest)
        case .committed(let fallback):
            if let committed { return committed }
            return try await resolve(tp, fallback, committed: nil)
        }
    }

    /// The next offset to deliver, per assigned partition.
    public var position: [(topic: String, partition: Int32, offset: Int64)] {
        state.withLockedValue { s in
            s.cursors.sorted { $0.key < $1.key }.map { ($0.key.topic, $0.key.partition, $0.value.position.load(ordering: .relaxed)) }
        }
    }

    private func positions(of only: Set<TopicPartition>? = nil) -> [TopicPartition: Int64] {
        state.withLockedValue { s in
            var out: [TopicPartition: Int64] = [:]
            for (tp, cursor) in s.cursors where only?.contains(tp) ?? true { out[tp] = cursor.position.load(ordering: .relaxed) }
            return out
        }
    }

    /// True once every assigned partition's position has reached the high watermark
    /// its last fetch reported (the consumer has delivered everything that was there).
    /// False while a partition's failure waits to be thrown by the next poll.
    public var isAtEnd: Bool {
        state.withLockedValue { s in
            s.pendingErrors.isEmpty && s.cursors.values.allSatisfy { c in
                let hw = c.highWatermark.load(ordering: .relaxed)
                return hw >= 0 && c.position.load(ordering: .relaxed) >= hw
            }
        }
    }

    // MARK: - Commits

    /// Commits the delivered positions of every assigned partition for the group.
    public func commit() async throws {
        try await commit(positions: positions())
    }

    /// Commits `record.offset + 1` for the record's partition: the record and everything
    /// before it in that partition are done.
    public func commit(_ record: ConsumerRecord) async throws {
        try await commit(positions: [TopicPartition(record.topic, record.partition): record.offset + 1])
    }

    /// Commits the given next-offsets.
    public func commit(positions: [TopicPartition: Int64]) async throws {
        guard !positions.isEmpty else { return }
        let sorted = positions.sorted { $0.key < $1.key }.map { ($0.key.topic, $0.key.partition, $0.value) }
        if let membership = membershipBox.withLockedValue({ $0 }) {
            // Subscribed: commit as a member of the current generation.
            try await membership.commit(sorted)
        } else {
            guard let group else { throw SpoolClientError(.invalidUse, "commit needs a group id") }
            try await admin.commit(group: group, offsets: sorted)
        }
        state.withLockedValue { s in
            for (tp, offset) in positions { s.committed[tp] = offset }
        }
    }

    /// Auto-commit: when due, commits the positions that moved since the last commit.
    /// Runs at the start of a poll or iterator refill, when the application has come back
    /// for more and so has finished with everything delivered so far.
    private func autoCommitIfDue() async {
        guard config.enableAutoCommit, group != nil else { return }
        let changed = state.withLockedValue { s -> [TopicPartition: Int64]? in
            guard ContinuousClock.now - s.lastAutoCommit >= .milliseconds(config.autoCommitIntervalMillis) else { return nil }
            s.lastAutoCommit = .now
            var changed: [TopicPartition: Int64] = [:]
            for (tp, c) in s.cursors {
                let p = c.position.load(ordering: .relaxed)
                if s.committed[tp] != p { changed[tp] = p }
            }
            return changed
        }
        guard let changed, !changed.isEmpty else { return }
        do {
            try await commit(positions: changed)
        } catch {
            // The next interval tries again: positions only move forward.
            config.onRetry?(error)
        }
    }

    /// Stops the consumer: commits the delivered positions when auto-commit is on.
    /// The connection stays open (it may be shared); close it separately. Made from a
    /// connection, the consumer closes the other brokers' connections its router opened.
    public func close() async throws {
        let first = state.withLockedValue { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        defer { if ownsRouter { Task { [router] in await router.close() } } }
        guard config.enableAutoCommit, group != nil else { return }
        let changed = state.withLockedValue { s in
            s.cursors.reduce(into: [TopicPartition: Int64]()) { out, e in
                let p = e.value.position.load(ordering: .relaxed)
                if s.committed[e.key] != p { out[e.key] = p }
            }
        }
        try await commit(positions: changed)
    }

    // MARK: - Delivery

    /// Delivers up to `maxRecords` (default `maxPollRecords`) buffered records, fetching
    /// first (one long-polling round) if the buffer is drained. May return no records.
    /// Returned records count as delivered: their partitions' positions move past them.
    public func poll(maxRecords: Int? = nil) async throws -> ConsumerRecords {
        await autoCommitIfDue()
        let limit = max(1, maxRecords ?? config.maxPollRecords)
        var runs = takeBuffered(limit: limit)
        if runs.isEmpty {
            try await fill()
            runs = takeBuffered(limit: limit)
        }
        // Deliver: move each partition's position past its last returned record.
        for run in runs {
            let last = run.batch.slots[run.range.upperBound - 1].offset
            run.batch.cursor.position.store(last + 1, ordering: .relaxed)
        }
        return ConsumerRecords(runs: runs)
    }

    /// Records from the assigned partitions, in offset order per partition, until the task
    /// is cancelled. Each record is delivered (its position moves) when the iterator
    /// returns it; the buffer is refilled by one fetch at a time.
    public func records() -> RecordStream { RecordStream(consumer: self) }

    /// The undelivered buffered records, up to `limit`, without delivering them. Batches of
    /// a stale generation (a seek happened) or wholly delivered are dropped.
    func takeBuffered(limit: Int) -> [(batch: DecodedBatch, range: Range<Int>)] {
        state.withLockedValue { s in
            var runs: [(batch: DecodedBatch, range: Range<Int>)] = []
            var left = limit
            var keep: [DecodedBatch] = []
            // A partition's batches are in offset order; positions move while we take, so track them here.
            var taken: [ObjectIdentifier: Int64] = [:]
            for batch in s.buffer {
                let cursor = batch.cursor
                guard cursor.generation.load(ordering: .relaxed) == batch.generation,
                      s.cursors[TopicPartition(cursor.topic, cursor.partition)] === cursor else { continue }
                let from = taken[ObjectIdentifier(cursor)] ?? cursor.position.load(ordering: .relaxed)
                let first = Self.firstSlot(atOrAfter: from, in: batch.slots)
                guard first < batch.slots.count else { continue }
                if left > 0 {
                    let end = left >= batch.slots.count - first ? batch.slots.count : first + left
                    runs.append((batch, first..<end))
                    left -= end - first
                    taken[ObjectIdentifier(cursor)] = batch.slots[end - 1].offset + 1
                }
                keep.append(batch)
            }
            s.buffer = keep
            return runs
        }
    }

    /// Index of the first slot with offset ≥ `offset` (slots are in offset order).
    static func firstSlot(atOrAfter offset: Int64, in slots: [RecordSlot]) -> Int {
        var low = 0, high = slots.count
        while low < high {
            let mid = (low + high) / 2
            if slots[mid].offset < offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Fetches one round into the buffer (called when it is drained). Throws a pending
    /// partition failure first; rides out connection failures (returns after a backoff).
    func fill() async throws {
        if let error = state.withLockedValue({ s -> Error? in s.pendingErrors.isEmpty ? nil : s.pendingErrors.removeFirst() }) {
            throw error
        }
        let fetched: [FetchedPartition]
        do {
            fetched = try await fetchRound()
        } catch let error where isRetriable(error) {
            config.onRetry?(error)
            try await Task.sleep(for: .milliseconds(config.retryBackoffMillis))
            return
        }
        var batches: [DecodedBatch] = []
        var errors: [Error] = []
        for f in fetched {
            do {
                batches += try decode(f)
            } catch {
                errors.append(error)
            }
        }
        count(fetched: batches.reduce(0) { $0 + $1.slots.count }, bytes: fetched.reduce(0) { $0 + $1.bytes.readableBytes })
        state.withLockedValue { s in
            s.buffer += batches
            s.pendingErrors += errors
        }
        if batches.isEmpty, let error = state.withLockedValue({ s -> Error? in s.pendingErrors.isEmpty ? nil : s.pendingErrors.removeFirst() }) {
            throw error
        }
    }

    /// One partition's part of a fetch response.
    struct FetchedPartition {
        var cursor: PartitionCursor
        var generation: Int
        var requestedOffset: Int64
        var result: Spool_V1_FetchPartitionResult
        var bytes: ByteBuffer
    }

    /// One fetch request over every assigned partition, from their fetch offsets.
    private func fetchRound() async throws -> [FetchedPartition] {
        let cursors = state.withLockedValue { s in s.cursors.sorted { $0.key < $1.key }.map(\.value) }
        if let membership = membershipBox.withLockedValue({ $0 }) {
            // Subscribed: report a membership that ended; while the group gives this member
            // nothing, idle like an empty long poll.
            if let failure = membership.failure { throw failure }
            if cursors.isEmpty {
                try await Task.sleep(for: .milliseconds(Int(config.maxWaitMillis)))
                return []
            }
        }
        guard !cursors.isEmpty else { throw SpoolClientError(.invalidUse, "no partitions assigned") }
        // One fetch per leader, all at once; partitions without a known leader wait for a refresh.
        var byLeader: [Int32: (connection: SpoolConnection, cursors: [PartitionCursor])] = [:]
        var unrouted: [String] = []
        for c in cursors {
            guard let (node, connection) = router.leader(of: TopicPartition(c.topic, c.partition)) else {
                unrouted.append(c.topic)
                continue
            }
            byLeader[node, default: (connection, [])].cursors.append(c)
        }
        if !unrouted.isEmpty {
            router.track(unrouted)
            router.requestRefresh()
        }
        guard !byLeader.isEmpty else {
            throw SpoolStatusError(.notLeaderOrFollower, "no leader known for \(Set(unrouted).sorted().joined(separator: ", ")) yet")
        }
        if byLeader.count == 1, let only = byLeader.first?.value {
            return try await fetch(only.cursors, from: only.connection)
        }
        let rounds = await withTaskGroup(of: Result<[FetchedPartition], Error>.self) { group in
            for (_, leader) in byLeader {
                group.addTask {
                    do { return .success(try await self.fetch(leader.cursors, from: leader.connection)) } catch { return .failure(error) }
                }
            }
            var all: [Result<[FetchedPartition], Error>] = []
            for await r in group { all.append(r) }
            return all
        }
        var out: [FetchedPartition] = []
        var failure: Error?
        for round in rounds {
            switch round {
            case .success(let fetched): out += fetched
            case .failure(let error):
                // One leader's failure does not hold back the others' records.
                if !isRetriable(error) { throw error }
                config.onRetry?(error)
                failure = failure ?? error
            }
        }
        if out.isEmpty, let failure { throw failure }
        return out
    }

    /// One fetch request to one leader over its partitions, from their fetch offsets. A
    /// broken connection asks the router for fresh metadata (leadership may have moved).
    private func fetch(_ cursors: [PartitionCursor], from connection: SpoolConnection) async throws -> [FetchedPartition] {
        var request = Spool_V1_FetchRequest()
        request.maxWaitMs = config.maxWaitMillis
        request.minBytes = 1
        request.maxBytes = config.maxBytesPerFetch
        request.readCommitted = config.readCommitted
        var sent: [TopicPartition: (PartitionCursor, Int, Int64)] = [:]
        request.partitions = cursors.map { c in
            var p = Spool_V1_FetchPartition()
            p.topic = c.topic
            p.partition = c.partition
            p.offset = c.fetchOffset.load(ordering: .relaxed)
            p.maxBytes = config.maxBytesPerPartition
            sent[TopicPartition(c.topic, c.partition)] = (c, c.generation.load(ordering: .relaxed), p.offset)
            return p
        }
        let reply: SpoolConnection.Reply
        do {
            reply = try await connection.rawCall(.fetch, request, timeoutMillis: Int(config.maxWaitMillis) + connection.config.requestTimeoutMillis)
        } catch where isRetriable(error) {
            router.requestRefresh()
            throw error
        }
        let response = try ProtoCodec.decode(Spool_V1_FetchResponse.self, from: reply.message)
        var payload = reply.payload
        var out: [FetchedPartition] = []
        for result in response.partitions {
            guard let bytes = payload.readSlice(length: Int(result.bytes)) else {
                throw SpoolStatusError(.internal, "fetch payload shorter than its partitions declare")
            }
            guard let (cursor, generation, offset) = sent[TopicPartition(result.topic, result.partition)] else { continue }
            out.append(FetchedPartition(cursor: cursor, generation: generation, requestedOffset: offset, result: result, bytes: bytes))
        }
        return out
    }

    /// Turns one partition's result into decoded batches, applying the offset reset
    /// policy; throws that partition's failure (the others go on).
    private func decode(_ f: FetchedPartition) throws -> [DecodedBatch] {
        let cursor = f.cursor
        guard cursor.generation.load(ordering: .relaxed) == f.generation else { return [] } // a seek happened meanwhile
        // read_committed: the end a reader can reach is the last stable offset.
        cursor.highWatermark.store(config.readCommitted ? f.result.lastStableOffset : f.result.highWatermark, ordering: .relaxed)
        cursor.logStartOffset.store(f.result.logStartOffset, ordering: .relaxed)
        switch f.result.code {
        case .ok: break
        case .outOfRange:
            let start = f.result.logStartOffset, end = f.result.highWatermark
            switch config.autoOffsetReset {
            case .earliest: cursor.seek(to: start)
            case .latest: cursor.seek(to: end)
            case .error:
                throw SpoolClientError(.offsetOutOfRange,
                                       "offset \(f.requestedOffset) is outside the log of \(cursor.name), which holds offsets \(describeOffsets(start: start, end: end))")
            }
            return []
        case .notLeaderOrFollower:
            // Leadership moved: fetch from the new leader once the metadata says who it is.
            router.requestRefresh()
            config.onRetry?(SpoolStatusError(f.result.code, f.result.message))
            return []
        case .unavailable, .resourceExhausted, .deadlineExceeded:
            config.onRetry?(SpoolStatusError(f.result.code, f.result.message))
            return []
        default:
            throw SpoolStatusError(f.result.code, "\(cursor.name): \(f.result.message)")
        }
        var batches: [DecodedBatch] = []
        var reader = RecordBatchReader(f.bytes, allowPartialTail: true)
        var next = f.requestedOffset
        // read_committed: aborted transactions not yet reached, and those being skipped (by producer id).
        var pendingAborts = f.result.abortedTransactions.sorted { $0.firstOffset < $1.firstOffset }[...]
        var aborting: Set<Int64> = []
        while let batch = try reader.next() {
            let h = batch.header
            while let a = pendingAborts.first, a.firstOffset <= h.lastOffset {
                aborting.insert(a.producerID)
                pendingAborts = pendingAborts.dropFirst()
            }
            guard h.lastOffset >= next else {
                if h.isControl { aborting.remove(h.producerId) }
                continue
            }
            // Transaction markers take an offset but are never delivered to applications;
            // records of an aborted transaction neither (read_committed).
            if h.isControl || (h.isTransactional && aborting.contains(h.producerId)) {
                if h.isControl { aborting.remove(h.producerId) }
                next = h.nextOffset
                continue
            }
            let decoded = try batch.recordSlots(from: next)
            next = batch.header.nextOffset
            if !decoded.slots.isEmpty {
                batches.append(DecodedBatch(cursor: cursor, generation: f.generation, decoded: decoded))
            }
        }
        if next != f.requestedOffset {
            // Only this fetch moves the fetch offset; a concurrent seek changed the generation.
            if cursor.generation.load(ordering: .relaxed) == f.generation {
                cursor.fetchOffset.store(next, ordering: .relaxed)
            } else {
                return []
            }
        }
        if batches.isEmpty, cursor.generation.load(ordering: .relaxed) == f.generation {
            // Nothing to deliver (transaction markers, aborted records): a fetch leaves only once
            // the buffer is drained, so every record before `next` was delivered or skipped.
            let position = cursor.position.load(ordering: .relaxed)
            if position < next { cursor.position.store(next, ordering: .relaxed) }
        }
        return batches
    }

    // MARK: - Batch-level delivery (for tools that handle whole batches)

    /// A fetched batch and the partition it came from; its records are decoded on demand.
    public struct FetchedBatch: Sendable {
        public var topic: String
        public var partition: Int32
        public var batch: RecordBatch
        /// Records before this offset were already delivered (a batch may start before the position).
        public var skipBelow: Int64
    }

    /// One fetch round over every assigned partition, as whole CRC-checked batches (not
    /// decompressed), delivered at once: the fast path for tools that count batches.
    /// Do not mix with `poll()` / `records()` on the same consumer.
    public func pollBatches() async throws -> [FetchedBatch] {
        let fetched: [FetchedPartition]
        do {
            fetched = try await fetchRound()
        } catch let error where isRetriable(error) {
            config.onRetry?(error)
            try await Task.sleep(for: .milliseconds(config.retryBackoffMillis))
            return []
        }
        var out: [FetchedBatch] = []
        var records = 0, bytes = 0
        defer { count(fetched: records, bytes: bytes) }
        for f in fetched {
            guard f.result.code == .ok else {
                _ = try decode(f) // applies the reset policy or throws
                continue
            }
            f.cursor.highWatermark.store(config.readCommitted ? f.result.lastStableOffset : f.result.highWatermark, ordering: .relaxed)
            var reader = RecordBatchReader(f.bytes, allowPartialTail: true)
            var next = f.requestedOffset
            while let batch = try reader.next() {
                guard batch.header.lastOffset >= next else { continue }
                out.append(FetchedBatch(topic: f.cursor.topic, partition: f.cursor.partition, batch: batch, skipBelow: f.requestedOffset))
                next = batch.header.nextOffset
                records += Int(batch.header.nextOffset - max(batch.header.baseOffset, f.requestedOffset))
                bytes += batch.bytes.readableBytes
            }
            if next != f.requestedOffset, f.cursor.generation.load(ordering: .relaxed) == f.generation {
                f.cursor.fetchOffset.store(next, ordering: .relaxed)
                f.cursor.position.store(next, ordering: .relaxed)
            }
        }
        return out
    }
}

/// The records of a `SpoolConsumer` as an `AsyncSequence`: each `next()` delivers one
/// record (moves its partition's position); a refill takes the whole buffer (one fetch)
/// at a time, so iterating costs no lock and no allocation per record.
public struct RecordStream: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    @usableFromInline let consumer: SpoolConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let consumer: SpoolConsumer
        @usableFromInline var chunk = ConsumerRecords(runs: []).makeIterator()

        @usableFromInline init(consumer: SpoolConsumer) {
            self.consumer = consumer
        }

        // Inlinable so that the per-record path (no suspension) compiles into the caller's loop.
        @inlinable public mutating func next() async throws -> ConsumerRecord? {
            while true {
                if let record = chunk.next() {
                    let cursor = record.batch.cursor
                    // A seek since the refill makes the rest of this batch stale.
                    guard cursor.generation.load(ordering: .relaxed) == record.batch.generation else { continue }
                    cursor.position.store(record.offset + 1, ordering: .relaxed)
                    return record
                }
                try Task.checkCancellation()
                chunk = try await consumer.refill().makeIterator()
            }
        }
    }

    @inlinable public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}

extension SpoolConsumer {
    /// The iterator's refill: auto-commit when due, then every buffered undelivered record
    /// (fetching first if there are none), not yet delivered.
    @usableFromInline func refill() async throws -> ConsumerRecords {
        await autoCommitIfDue()
        var runs = takeBuffered(limit: .max)
        if runs.isEmpty {
            try await fill()
            runs = takeBuffered(limit: .max)
        }
        return ConsumerRecords(runs: runs)
    }
}

import NIOCore
import NIOPosix
import SpoolRecords
import SpoolStorage

// The seam between the cluster layer and the core: the cluster layer says what each
// partition's replicas are and who leads (from etcd); the core holds the data, leads or
// follows. In single-node mode nothing here is called and every partition is
// `ReplicaState.soleReplica(nodeId)`.
extension Broker {
    /// Makes sure this broker holds `topic` with at least `partitions` partitions and these
    /// config overrides, in local storage only (the cluster layer has already decided the
    /// topic exists). Idempotent.
    public func hostTopic(_ topic: String, partitions: Int32, overrides: [String: String]) async throws {
        try await BrokerError.translateAsync {
            try await io.run { [storage] in
                if let definition = storage.topics.get(topic) {
                    if definition.partitions < partitions { _ = try storage.addPartitions(topic, totalCount: partitions) }
                    if definition.overrides != overrides { _ = try storage.replaceOverrides(topic, overrides) }
                } else {
                    _ = try storage.createTopic(topic, partitions: partitions, overrides: overrides)
                }
            }
        }
    }

    /// Acts on the cluster's latest decision for one partition this broker holds: lead it at
    /// `state.leaderEpoch`, follow `state.leader`, or serve nothing. States with an older
    /// partition epoch (or an older leader epoch) than one already applied are ignored.
    /// The topic must be hosted (`hostTopic`).
    ///
    /// Becoming leader records (epoch, log end) in the epoch file and starts tracking the
    /// followers; leaving the lead fails the acks=all requests waiting (NOT_LEADER_OR_FOLLOWER).
    /// Every role change is reported to `replicaRoleObserver` (the follower fetcher).
    public func applyReplicaState(_ tp: TopicPartition, _ state: ReplicaState) async throws {
        let log = try BrokerError.translate { try storage.partition(tp) }
        let accepted = replicaStates.withLockedValue { states -> Bool in
            if let known = states[tp], known.partitionEpoch > state.partitionEpoch || known.leaderEpoch > state.leaderEpoch {
                return false
            }
            states[tp] = state
            return true
        }
        guard accepted, let node = config.nodeId else { return }
        let now = PartitionLog.wallClockMillis()
        let newRole = role(tp)
        // A replicated log keeps its HW (checkpointed); one that never had one starts at 0.
        if !log.isReplicated { log.setHighWatermark(0) }
        switch newRole {
        case .leader(let epoch):
            let current = leaderStates.withLockedValue { $0[tp] }
            if let current, current.epoch == epoch, current.log === log {
                current.update(state, now: now)
            } else {
                current?.depose()
                try await BrokerError.translateAsync {
                    try await io.run(tp, on: Self.replicationLoop) { try log.assignLeaderEpoch(epoch) }.get()
                }
                let leader = LeaderState(tp, log: log, nodeId: node, replica: state, lagTimeMaxMillis: config.replicaLagTimeMaxMillis, now: now)
                leaderStates.withLockedValue { $0[tp] = leader }
                leader.appended()
                startReplicationTimer()
            }
        case .follower, .offline:
            if let old = leaderStates.withLockedValue({ $0.removeValue(forKey: tp) }) { old.depose() }
        }
        notifier.notify(tp)
        replicaRoleObserver?(tp, newRole)
    }

    /// The state last applied to `tp`, nil in single-node mode or before the first one.
    public func replicaState(_ tp: TopicPartition) -> ReplicaState? {
        replicaStates.withLockedValue { $0[tp] }
    }

    /// This broker's role for `tp`: leader of everything in single-node mode.
    public func role(_ tp: TopicPartition) -> ReplicaRole {
        guard let state = replicaState(tp), let node = config.nodeId else { return .leader(epoch: 0) }
        if state.leader == node { return .leader(epoch: state.leaderEpoch) }
        if state.leader >= 0 && state.replicas.contains(node) { return .follower(leader: state.leader, epoch: state.leaderEpoch) }
        return .offline(epoch: state.leaderEpoch)
    }

    /// The leader epoch to stamp on an append to `tp`, or the error that refuses it:
    /// NOT_LEADER_OR_FOLLOWER unless this broker leads (nil in single-node mode: batches
    /// are stored as produced, as before replication).
    func leaderEpochForAppend(_ tp: TopicPartition) throws -> (epoch: Int32?, leader: LeaderState?) {
        guard config.nodeId != nil, replicaState(tp) != nil else { return (nil, nil) }
        guard case .leader(let epoch) = role(tp), let leader = leaderStates.withLockedValue({ $0[tp] }), !leader.isDeposed else {
            throw BrokerError(.notLeaderOrFollower, "this broker does not lead \(tp)")
        }
        return (epoch, leader)
    }

    /// KIP-320: a request's `current_leader_epoch` against this broker's for `tp`: older →
    /// FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH, -1 skips.
    public func checkLeaderEpoch(_ tp: TopicPartition, _ requested: Int32) throws {
        guard requested >= 0, config.nodeId != nil, let state = replicaState(tp) else { return }
        if requested < state.leaderEpoch {
            throw BrokerError(.fencedLeaderEpoch, "leader epoch \(requested) of \(tp) is older than the current \(state.leaderEpoch)")
        }
        if requested > state.leaderEpoch {
            throw BrokerError(.unknownLeaderEpoch, "leader epoch \(requested) of \(tp) is newer than this broker knows (\(state.leaderEpoch))")
        }
    }

    /// Whether this broker may answer a consumer (a read, ListOffsets) for `tp`: it leads,
    /// or runs single-node. Throws NOT_LEADER_OR_FOLLOWER otherwise.
    func checkServesConsumers(_ tp: TopicPartition) throws {
        guard config.nodeId != nil, replicaState(tp) != nil else { return }
        guard case .leader = role(tp), let leader = leaderStates.withLockedValue({ $0[tp] }), !leader.isDeposed else {
            throw BrokerError(.notLeaderOrFollower, "this broker does not lead \(tp)")
        }
    }

    /// The event loop of the core's replication timers (ISR checks, acks=all timeouts).
    static var replicationLoop: EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    // MARK: Leader side of the replica fetch

    /// A follower's fetch of `tp` at `offset` (planned by `plan`): checks the lead and the
    /// follower's last fetched epoch; nil when the follower may read on, else the diverging
    /// epoch to answer. Records the fetch offset as the follower's log end.
    func recordReplicaFetch(_ tp: TopicPartition, replica: Int32, offset: Int64, lastFetchedEpoch: Int32,
                            log: PartitionLog) throws -> (epoch: Int32, endOffset: Int64)? {
        guard let leader = leaderStates.withLockedValue({ $0[tp] }), !leader.isDeposed, leader.log === log else {
            throw BrokerError(.notLeaderOrFollower, "this broker does not lead \(tp)")
        }
        if lastFetchedEpoch >= 0 {
            let answer = log.endOffset(forLeaderEpoch: lastFetchedEpoch)
            if answer.epoch != lastFetchedEpoch || answer.endOffset < offset {
                return answer
            }
        }
        let before = log.highWatermark
        if let expand = leader.recordFetch(from: replica, offset: offset, now: PartitionLog.wallClockMillis()) {
            propose(tp, leader, isr: expand)
        }
        if log.highWatermark != before { notifier.notify(tp) }
        return nil
    }

    /// Sends one ISR proposal for `tp` (at most one in flight per partition).
    func propose(_ tp: TopicPartition, _ leader: LeaderState, isr: [Int32]) {
        guard let delegate = replicationDelegate, leader.beginProposal() else { return }
        let current = leader.replica
        let broker = self
        Task {
            let result = await delegate.proposeISR(tp, from: current, to: isr)
            leader.endProposal()
            if let result {
                events.logger.info("ISR of \(tp) now \(result.isr) (proposed \(isr) at partition epoch \(current.partitionEpoch))")
                events.metrics.replication.isrChanged(from: current.isr, to: result.isr)
                // The delegate applies the state too; applying it here keeps the order when it does not.
                try? await broker.applyReplicaState(tp, result)
            }
        }
    }

    /// Starts the periodic ISR-shrink check (once; every `replica.lag.time.max.ms` / 2).
    func startReplicationTimer() {
        let start = replicationTimer.withLockedValue { started -> Bool in
            if started { return false }
            started = true
            return true
        }
        guard start else { return }
        let interval = max(50, config.replicaLagTimeMaxMillis / 2)
        Self.replicationLoop.scheduleRepeatedTask(initialDelay: .milliseconds(interval), delay: .milliseconds(interval)) { [weak self] task in
            guard let self else { task.cancel(); return }
            self.checkISRs()
        }
    }

    /// Proposes a smaller ISR for every led partition whose followers lag too long.
    func checkISRs() {
        let now = PartitionLog.wallClockMillis()
        for (tp, leader) in leaderStates.withLockedValue({ $0 }) {
            if let shrunk = leader.shrinkCandidate(now: now) { propose(tp, leader, isr: shrunk) }
        }
    }

    /// Followers' log ends for a led partition (node → offset, -1 before its first fetch);
    /// nil unless this broker leads `tp`. For tests and metrics.
    public func followerLogEnds(_ tp: TopicPartition) -> [Int32: Int64]? {
        leaderStates.withLockedValue { $0[tp] }?.followerLogEnds
    }

    // MARK: Follower side

    /// Where this replica's log of `tp` ends and the epoch of its last batch (what a
    /// follower sends as fetch offset and LastFetchedEpoch).
    public func replicaPosition(_ tp: TopicPartition) throws -> (logEnd: Int64, lastEpoch: Int32, highWatermark: Int64) {
        try BrokerError.translate {
            let log = try storage.partition(tp)
            return (log.endOffset, log.latestLeaderEpoch ?? -1, log.highWatermark)
        }
    }

    /// OffsetForLeaderEpoch on this replica's log: the largest epoch ≤ `epoch` it holds and
    /// where it ends; (-1, -1) when `epoch` is older than all of them.
    public func endOffset(_ tp: TopicPartition, forLeaderEpoch epoch: Int32, currentLeaderEpoch: Int32 = -1) throws -> (epoch: Int32, endOffset: Int64) {
        try BrokerError.translate {
            let log = try storage.partition(tp)
            try checkLeaderEpoch(tp, currentLeaderEpoch)
            return log.endOffset(forLeaderEpoch: epoch)
        }
    }

    /// OffsetForLeaderEpoch answered by the leader: fenced by `currentLeaderEpoch`,
    /// NOT_LEADER_OR_FOLLOWER unless this broker leads `tp`.
    public func offsetForLeaderEpoch(_ tp: TopicPartition, _ epoch: Int32, currentLeaderEpoch: Int32) throws -> (epoch: Int32, endOffset: Int64) {
        try BrokerError.translate {
            let log = try storage.partition(tp)
            try checkLeaderEpoch(tp, currentLeaderEpoch)
            try checkServesConsumers(tp)
            return log.endOffset(forLeaderEpoch: epoch)
        }
    }

    /// A follower appends the leader's batches as they are (offsets and epochs kept) and
    /// moves its HW to min(leader's HW, its log end). Updates the producer state (so this
    /// replica, once leader, answers idempotent retries with their original offsets).
    /// Returns the new log end.
    public func appendReplicated(_ tp: TopicPartition, _ batches: ByteBuffer, leaderHighWatermark: Int64, on eventLoop: EventLoop) -> EventLoopFuture<Int64> {
        let storage = storage
        let producers = producers
        let notifier = notifier
        return io.run(tp, on: eventLoop) { [self] in
            try BrokerError.translate {
                let log = try storage.partition(tp)
                guard case .follower = role(tp) else {
                    throw BrokerError(.notLeaderOrFollower, "this broker does not follow \(tp) now")
                }
                if batches.readableBytes > 0 {
                    let appended = try log.appendAsFollower(batches)
                    try producers.table(for: log).replicate(appended.batches, log: log)
                }
                log.setHighWatermark(min(leaderHighWatermark, log.endOffset))
                notifier.notify(tp)
                return log.endOffset
            }
        }
    }

    /// A follower cuts its log of `tp` to `offset` (where the leader's log agrees with it),
    /// with its epoch file, HW and producer state.
    public func truncateReplica(_ tp: TopicPartition, to offset: Int64, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let storage = storage
        let producers = producers
        let events = events
        return io.run(tp, on: eventLoop) {
            try BrokerError.translate {
                let log = try storage.partition(tp)
                let end = log.endOffset
                try log.truncate(to: offset) // at the end: drops an epoch this replica led without appending
                guard offset < end else { return }
                producers.reset(tp)
                events.logger.info("truncated \(tp) from \(end) to \(offset) (divergent tail)")
            }
        }
    }
}

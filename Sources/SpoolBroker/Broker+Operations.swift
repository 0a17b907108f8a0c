import SpoolRecords
import SpoolStorage

// What operators see of the core's storage (the admin listener, `spool broker`), and
// the background work a broker process starts.
extension Broker {
    /// True when the storage was opened after a clean shutdown (nothing was recovered).
    public var openedClean: Bool { storage.openedClean }

    /// The data directory, as configured.
    public var dataDirectory: String { storage.config.dataDirectory }

    /// Segment files open in the storage's descriptor cache now, and its capacity.
    public var segmentFiles: (open: Int, capacity: Int) { (storage.files.openCount, storage.files.capacity) }

    /// Starts retention, time-based flushes and the log cleaner.
    public func startBackgroundWork() {
        storage.startBackgroundWork()
        cleaner.start()
    }

    /// Cleans the compacted partitions (of `topic`, or all) now, on the calling thread,
    /// whether or not a clean is due. Returns the partitions cleaned.
    @discardableResult
    public func cleanCompactedTopics(topic: String? = nil) -> Int {
        cleaner.runOnce(now: PartitionLog.wallClockMillis(), force: true, topic: topic)
    }

    /// Groups that have committed offsets, straight from the offsets store (whatever the
    /// coordinator's state).
    public var groupsWithCommittedOffsets: [String] { storage.offsets.groups }

    /// A group's committed offsets straight from the offsets store, by partition.
    public func storedOffsets(group: String) -> [GroupCoordinator.FetchedOffset] {
        storage.offsets.committed(group: group).sorted { $0.key < $1.key }.map { tp, c in
            GroupCoordinator.FetchedOffset(partition: tp, offset: c.offset, metadata: c.metadata, commitTimestamp: c.commitTimestamp)
        }
    }

    /// Computes the gauges that are functions of state (offsets, sizes, lag, budgets), for
    /// a scrape; `groups` are the groups' members and committed offsets.
    public func collectMetrics(groups: [BrokerMetrics.GroupSnapshot]) {
        let now = PartitionLog.wallClockMillis()
        let lags = leaderStates.withLockedValue { $0 }.flatMap { tp, leader in
            leader.followerLags(now: now).map { FollowerLag(topicPartition: tp, follower: $0.node, records: $0.records, millis: $0.millis) }
        }
        events.metrics.collect(storage: storage, groups: groups, budgets: budgets, followerLags: lags)
        cleanerMetrics.report(cleaner.stats)
    }
}

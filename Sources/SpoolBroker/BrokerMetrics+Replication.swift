import CoreMetrics
import SpoolRecords

/// Replication metrics of the partitions this broker leads: `spool_isr_shrinks_total` and
/// `spool_isr_expands_total` (ISR changes its proposals made, Kafka's IsrShrinksPerSec /
/// IsrExpandsPerSec), and, set on scrape, `spool_follower_lag_records` and
/// `spool_follower_lag_seconds` per follower (how far behind the leader's log end its
/// last fetch was, and for how long it has not been caught up).
public final class ReplicationMetrics: Sendable {
    static let catalogue: [BrokerMetrics.Descriptor] = [
        .init(name: "spool_isr_shrinks_total", kind: .counter, help: "Followers this broker's ISR proposals took out of a partition's ISR (lagging past replica.lag.time.max.ms).", buckets: []),
        .init(name: "spool_isr_expands_total", kind: .counter, help: "Followers this broker's ISR proposals put back into a partition's ISR (caught up with the high watermark).", buckets: []),
        .init(name: "spool_follower_lag_records", kind: .gauge, help: "Records between a led partition's log end and a follower's last fetch offset.", buckets: []),
        .init(name: "spool_follower_lag_seconds", kind: .gauge, help: "Seconds since a follower of a led partition was last caught up with the leader's log end.", buckets: []),
    ]

    let shrinks: Counter
    let expands: Counter

    init(factory: any MetricsFactory) {
        shrinks = Counter(label: "spool_isr_shrinks_total", factory: factory)
        expands = Counter(label: "spool_isr_expands_total", factory: factory)
    }

    /// An ISR change this broker proposed took effect.
    func isrChanged(from before: [Int32], to after: [Int32]) {
        let left = Set(before).subtracting(after).count, joined = Set(after).subtracting(before).count
        if left > 0 { shrinks.increment(by: left) }
        if joined > 0 { expands.increment(by: joined) }
    }
}

/// How far one follower of a led partition is behind, for the scrape.
public struct FollowerLag: Sendable, Hashable {
    public var topicPartition: TopicPartition
    public var follower: Int32
    /// Leader's log end minus the follower's last fetch offset (the whole log before its first fetch).
    public var records: Int64
    /// Milliseconds since it was last caught up.
    public var millis: Int64
}

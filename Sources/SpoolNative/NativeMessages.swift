import SpoolBroker
import SpoolProtocol

/// Conversions between the broker core's types and the native protocol's messages.
enum NativeMessages {
    static func topic(_ d: TopicDescription) -> Spool_V1_TopicDescription {
        var t = Spool_V1_TopicDescription()
        t.name = d.name
        t.partitions = d.partitions.map { p in
            var m = Spool_V1_PartitionDescription()
            m.partition = p.partition
            m.logStartOffset = p.logStartOffset
            m.logEndOffset = p.logEndOffset
            m.highWatermark = p.highWatermark
            m.sizeBytes = p.sizeBytes
            m.segments = Int32(p.segments)
            m.stopped = p.stopped
            m.failure = p.failure ?? ""
            if let replica = p.replica {
                m.clustered = true
                m.leader = replica.leader
                m.leaderEpoch = replica.leaderEpoch
                m.replicas = replica.replicas
                m.isr = replica.isr
            }
            return m
        }
        t.configs = entries(d.configs)
        t.overrides = entries(d.overrides)
        t.replicationFactor = Int32(d.replicationFactor)
        return t
    }

    static func entries(_ map: [String: String]) -> [Spool_V1_ConfigEntry] {
        map.sorted { $0.key < $1.key }.map { kv in
            var e = Spool_V1_ConfigEntry()
            e.key = kv.key
            e.value = kv.value
            return e
        }
    }

    static func acks(_ acks: Spool_V1_Acks) -> Acks {
        switch acks {
        case .none: return .none
        case .all: return .all
        default: return .leader
        }
    }
}

/// Kafka's replica placement (AdminUtils.assignReplicasToBrokers, rack-unaware), a pure function:
/// partition p's first replica is broker `(start + p) mod n`, its others follow at a shift that
/// grows every n partitions, so leaders spread over the brokers and followers do not pile up
/// behind one leader.
public enum ReplicaAssignment {
    /// Why a placement is impossible.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// More replicas asked than brokers alive (Kafka's INVALID_REPLICATION_FACTOR, 38).
        case replicationFactorAboveBrokers(replicationFactor: Int, brokers: Int)
        /// Replication factor or partition count below 1.
        case invalid(String)
        /// A manual assignment that cannot be placed (Kafka's INVALID_REPLICA_ASSIGNMENT, 39).
        case invalidAssignment(String)

        public var description: String {
            switch self {
            case .replicationFactorAboveBrokers(let rf, let brokers):
                "replication factor \(rf) is larger than the number of live brokers (\(brokers))"
            case .invalid(let message), .invalidAssignment(let message): message
            }
        }
    }

    /// Replicas for partitions `firstPartition ..< firstPartition + count` over `brokers`
    /// (sorted first; order does not matter). `start` and `shift` are Kafka's random start index
    /// and replica shift; pass random values in `0..<brokers.count` (tests pass fixed ones).
    public static func assign(brokers: [Int32], partitions count: Int, replicationFactor: Int,
                              firstPartition: Int = 0, start: Int, shift: Int) throws(Failure) -> [[Int32]] {
        guard count >= 0 else { throw .invalid("partition count \(count) is negative") }
        guard replicationFactor >= 1 else { throw .invalid("replication factor \(replicationFactor) is below 1") }
        let ids = Array(Set(brokers)).sorted()
        guard replicationFactor <= ids.count else {
            throw .replicationFactorAboveBrokers(replicationFactor: replicationFactor, brokers: ids.count)
        }
        let n = ids.count
        var result: [[Int32]] = []
        result.reserveCapacity(count)
        var nextShift = ((shift % n) + n) % n
        let begin = ((start % n) + n) % n
        for p in firstPartition..<(firstPartition + count) {
            if p > 0 && p % n == 0 { nextShift += 1 }
            let first = (p + begin) % n
            var replicas = [ids[first]]
            for j in 0..<(replicationFactor - 1) {
                replicas.append(ids[replicaIndex(first: first, shift: nextShift, j: j, n: n)])
            }
            result.append(replicas)
        }
        return result
    }

    /// Same as `assign` with a random start and shift (Kafka's default).
    public static func assignRandomly(brokers: [Int32], partitions count: Int, replicationFactor: Int,
                                      firstPartition: Int = 0) throws(Failure) -> [[Int32]] {
        let n = max(1, Set(brokers).count)
        return try assign(brokers: brokers, partitions: count, replicationFactor: replicationFactor, firstPartition: firstPartition,
                          start: Int.random(in: 0..<n), shift: Int.random(in: 0..<n))
    }

    /// Checks a manual assignment (Kafka's CreateTopics / CreatePartitions `assignments`, one
    /// replica list per partition) against the registered `brokers`: every list non-empty, of
    /// one length, at most `replicasMax`, without a broker twice, naming only registered brokers
    /// (as Kafka: a registered broker that is down is fine, an unknown id is not).
    public static func validate(_ assignment: [[Int32]], brokers: Set<Int32>, replicasMax: Int) throws(Failure) {
        guard let first = assignment.first else { throw .invalidAssignment("the replica assignment names no partition") }
        for (p, replicas) in assignment.enumerated() {
            guard !replicas.isEmpty else { throw .invalidAssignment("partition \(p) has an empty replica list") }
            guard replicas.count == first.count else {
                throw .invalidAssignment("partition \(p) has \(replicas.count) replicas and partition 0 has \(first.count): every partition needs the same number")
            }
            guard replicas.count <= replicasMax else { throw .invalidAssignment("partition \(p) has more than \(replicasMax) replicas") }
            guard Set(replicas).count == replicas.count else { throw .invalidAssignment("partition \(p)'s replicas \(replicas) name a broker twice") }
            let unknown = replicas.filter { !brokers.contains($0) }
            guard unknown.isEmpty else {
                throw .invalidAssignment("partition \(p)'s replicas \(replicas) name unknown brokers \(unknown) (registered: \(brokers.sorted()))")
            }
        }
    }

    static func replicaIndex(first: Int, shift: Int, j: Int, n: Int) -> Int {
        guard n > 1 else { return first }
        let s = 1 + (shift + j) % (n - 1)
        return (first + s) % n
    }
}

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

        public var description: String {
            switch self {
            case .replicationFactorAboveBrokers(let rf, let brokers):
                "replication factor \(rf) is larger than the number of live brokers (\(brokers))"
            case .invalid(let message): message
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

    static func replicaIndex(first: Int, shift: Int, j: Int, n: Int) -> Int {
        guard n > 1 else { return first }
        let s = 1 + (shift + j) % (n - 1)
        return (first + s) % n
    }
}

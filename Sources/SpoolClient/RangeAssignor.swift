/// Kafka's range assignor (protocol name "range"), run by the group leader: for each
/// topic, the members subscribed to it, sorted by member id, get consecutive ranges of
/// its partitions; the first `partitions % members` get one more.
///
/// 4 partitions, members a and b: a gets 0–1, b gets 2–3. 5 partitions: a 0–2, b 3–4.
public enum RangeAssignor {
    public static let name = "range"

    /// - Parameters:
    ///   - subscriptions: each member's topics.
    ///   - partitionCounts: each topic's partition count (topics missing here get nothing).
    /// - Returns: every member's partitions by topic (members with nothing get an empty map).
    public static func assign(subscriptions: [String: [String]], partitionCounts: [String: Int32]) -> [String: [String: [Int32]]] {
        var out: [String: [String: [Int32]]] = [:]
        for member in subscriptions.keys { out[member] = [:] }
        let topics = Set(subscriptions.values.flatMap { $0 })
        for topic in topics.sorted() {
            guard let count = partitionCounts[topic], count > 0 else { continue }
            let members = subscriptions.filter { $0.value.contains(topic) }.keys.sorted()
            let per = Int(count) / members.count
            let extra = Int(count) % members.count
            for (i, member) in members.enumerated() {
                let start = per * i + min(i, extra)
                let length = per + (i < extra ? 1 : 0)
                if length > 0 { out[member]![topic] = (start..<start + length).map { Int32($0) } }
            }
        }
        return out
    }
}

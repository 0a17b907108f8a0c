import SpoolProtocol

extension Spool_V1_GroupOffset {
    /// The wire form of committed positions: each partition's next offset to consume.
    static func list(_ offsets: [(topic: String, partition: Int32, offset: Int64)]) -> [Spool_V1_GroupOffset] {
        offsets.map { o in
            var g = Spool_V1_GroupOffset()
            g.topic = o.topic
            g.partition = o.partition
            g.offset = o.offset
            return g
        }
    }
}

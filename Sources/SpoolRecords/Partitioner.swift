/// Kafka's default partitioner for keyed records: murmur2 of the key bytes,
/// made positive, modulo the partition count. A record with the same key lands
/// on the same partition in Spool and in Kafka clients.
public enum KafkaPartitioner {
    /// Kafka's `Utils.murmur2` (seed 0x9747b28c).
    public static func murmur2(_ data: UnsafeRawBufferPointer) -> Int32 {
        let length = data.count
        let seed: UInt32 = 0x9747_B28C
        let m: UInt32 = 0x5BD1_E995
        let r: UInt32 = 24
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let length4 = length / 4
        for i in 0..<length4 {
            let i4 = i * 4
            var k = UInt32(data[i4]) | UInt32(data[i4 + 1]) << 8 | UInt32(data[i4 + 2]) << 16 | UInt32(data[i4 + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = length & ~3
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 1:
            h ^= UInt32(data[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    public static func murmur2(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { murmur2($0) }
    }

    /// The partition for `key` among `partitions`, as Kafka's default partitioner chooses it.
    public static func partition(forKey key: UnsafeRawBufferPointer, partitions: Int32) -> Int32 {
        precondition(partitions > 0)
        return (murmur2(key) & 0x7FFF_FFFF) % partitions
    }

    public static func partition(forKey key: [UInt8], partitions: Int32) -> Int32 {
        key.withUnsafeBytes { partition(forKey: $0, partitions: partitions) }
    }
}

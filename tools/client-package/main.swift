// A small application outside the Spool repository, built by tools/client-package/check.sh
// in a temporary directory with Spool as a path dependency: it uses nothing but
// `import SpoolClient`, as the README's "Using the client library" does, against a real
// broker. Usage: client-app PORT. Exits non-zero unless every record produced is consumed.
import SpoolClient

/// Why the application failed (thrown at top level: the process exits non-zero).
struct AppFailure: Error, CustomStringConvertible {
    let description: String
}

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    throw AppFailure(description: "usage: client-app PORT")
}
let total = 200

let connection = try await SpoolConnection.connect(host: "127.0.0.1", port: port)
try await SpoolAdmin(connection).createTopic("events", partitions: 3)
// A typed error, matched by its code.
do {
    try await SpoolAdmin(connection).createTopic("events", partitions: 3)
    throw AppFailure(description: "creating the topic twice succeeded")
} catch let error as SpoolStatusError where error.code == .alreadyExists {}

var config = ProducerConfig()          // batch.size 64 KiB, linger 5 ms, lz4, acks=1
config.acks = .all
config.compression = CompressionType(name: "gzip")!
let producer = SpoolProducer(connection: connection, config: config)
var partitions = Set<Int32>()
for i in 0..<total {
    let landed = try await producer.send(topic: "events", key: Array("user-\(i % 7)".utf8), value: Array("event-\(i)".utf8))
    partitions.insert(landed.partition)
}
try await producer.flush()

let consumerConfig = ConsumerConfig(group: "billing")   // auto-commit every 5 s, offset reset latest
let consumer = SpoolConsumer(connection: connection, config: consumerConfig)
try await consumer.assign(topic: "events", from: .committed(fallback: .beginning))
var seen = Set<String>()
for try await record in consumer.records() {
    let value: ByteBuffer = record.value!
    seen.insert(String(buffer: value))
    if seen.count == total { break }
}
try await consumer.commit()
await connection.close()
guard seen == Set((0..<total).map { "event-\($0)" }) else {
    throw AppFailure(description: "consumed \(seen.count) distinct records of \(total)")
}
print("client-app: produced and consumed \(total) records over \(partitions.count) partitions with import SpoolClient alone")

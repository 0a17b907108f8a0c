import ArgumentParser
import Foundation
import NIOCore
import SpoolRecords
import SpoolStorage

/// Appends batches with acks=all semantics straight into a data directory and prints
/// one line per acknowledged batch. Used by the crash tests, which kill it with
/// SIGKILL and then check that every acknowledged batch survived.
struct AppendLoop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-loop",
        abstract: "Append fsynced batches to a data directory and print 'ack PARTITION BASE COUNT CRC' per batch.",
        shouldDisplay: false
    )

    @Option(help: "Data directory.") var dataDir: String
    @Option(help: "Topic (created with 4 partitions if missing).") var topic = "crash"
    @Option(help: "Concurrent appenders.") var appenders = 8
    @Option(help: "Stop after this many seconds.") var seconds = 10.0
    @Option(help: "Segment size, to exercise rolling.") var segmentBytes = 65536

    func run() async throws {
        var config = StorageConfig(dataDirectory: dataDir)
        config.topicDefaults.segmentBytes = Int64(segmentBytes)
        config.topicDefaults.retentionMillis = -1
        let storage = try LogManager(config: config)
        if storage.topics.get(topic) == nil {
            try storage.createTopic(topic, partitions: 4)
        }
        let logs = try storage.partitions(of: topic)
        let deadline = ContinuousClock.now + .seconds(seconds)
        let out = FileHandle.standardOutput
        try await withThrowingTaskGroup(of: Void.self) { group in
            for a in 0..<appenders {
                group.addTask {
                    var seq = 0
                    while ContinuousClock.now < deadline {
                        let log = logs[(a + seq) % logs.count]
                        var builder = RecordBatchBuilder(codec: seq % 3 == 0 ? .lz4 : .none)
                        let count = 1 + (seq * 7 + a) % 20
                        var crc: UInt32 = 0
                        for i in 0..<count {
                            let value = Array("appender-\(a)-seq-\(seq)-record-\(i)-\(String(repeating: "z", count: (i * 13) % 200))".utf8)
                            crc = value.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
                            builder.append(key: nil, value: value, timestamp: Int64(Date().timeIntervalSince1970 * 1000))
                        }
                        var batch = try builder.build()
                        let result = try log.append(&batch)
                        try await log.waitUntilDurable(result.lastOffset + 1)
                        out.write(Data("ack \(log.partition) \(result.baseOffset) \(count) \(crc)\n".utf8))
                        seq += 1
                    }
                }
            }
            try await group.waitForAll()
        }
        try storage.close()
    }
}

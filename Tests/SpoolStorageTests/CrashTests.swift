import Foundation
import SpoolTestSupport
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Testing

/// The built `spool` executable: $SPOOL_BIN, or .build/debug/spool of this package.
func spoolExecutable() throws -> String {
    if let path = ProcessInfo.processInfo.environment["SPOOL_BIN"] { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = root.appendingPathComponent(".build/debug/spool").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw StorageError(.io, "\(path) is missing: run `swift build` first (tools/test.sh does)")
    }
    return path
}

@Suite struct CrashTests {
    /// A child appends with acks=all and prints what was acknowledged; it is killed with
    /// SIGKILL at a random moment. After recovery every acknowledged batch must read back
    /// with identical bytes. Repeated on the same directory, so recovery runs on recovered logs.
    @Test func killNineNeverLosesAcknowledgedBatches() async throws {
        let tmp = TempDir(); defer { tmp.cleanup() }
        let spool = try spoolExecutable()
        var random = SeededRandom(test: "killNineNeverLosesAcknowledgedBatches")
        let seed = random.seed
        var acknowledged: [(partition: Int32, base: Int64, count: Int, crc: UInt32)] = []
        for round in 0..<4 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: spool)
            child.arguments = ["debug", "append-loop", "--data-dir", tmp.path, "--seconds", "20", "--segment-bytes", "32768"]
            let pipe = Pipe()
            child.standardOutput = pipe
            try child.run()
            // Let it acknowledge a seeded number of batches, then kill -9 (bounded: the child
            // stops by itself after 20 s, which ends the output).
            let acksBeforeKill = Int.random(in: 5...60, using: &random)
            var received = Data()
            while received.split(separator: UInt8(ascii: "\n")).count < acksBeforeKill {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                received.append(chunk)
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal, "round \(round): the child must die by the signal (seed \(seed))")
            received.append(pipe.fileHandleForReading.readDataToEndOfFile())
            let output = String(decoding: received, as: UTF8.self)
            for line in output.split(separator: "\n") {
                let f = line.split(separator: " ")
                // A line cut by the kill is not an acknowledgement.
                guard f.count == 5, f[0] == "ack", let p = Int32(f[1]), let b = Int64(f[2]), let c = Int(f[3]), let crc = UInt32(f[4]) else { continue }
                acknowledged.append((p, b, c, crc))
            }
            // Recover (unclean: no marker) and check every acknowledged batch so far.
            var config = StorageConfig(dataDirectory: tmp.path)
            config.topicDefaults.retentionMillis = -1
            let storage = try LogManager(config: config)
            #expect(!storage.openedClean)
            for ack in acknowledged {
                let log = try storage.partition(TopicPartition("crash", ack.partition))
                let records = try decodeAll(try log.readBytes(from: ack.base, maxBytes: 1)) // exactly the batch at base
                let mine = records.filter { $0.offset >= ack.base && $0.offset < ack.base + Int64(ack.count) }
                #expect(mine.count == ack.count, "partition \(ack.partition) offset \(ack.base)")
                var crc: UInt32 = 0
                for r in mine { crc = r.value!.withUnsafeReadableBytes { CRC32C.checksum($0, continuing: crc) } }
                #expect(crc == ack.crc, "partition \(ack.partition) offset \(ack.base): bytes differ")
            }
            // Leave it unclean again for the next round: no close() marker.
            try storage.close()
            try FileManager.default.removeItem(atPath: tmp.path + "/" + LogManager.cleanShutdownMarker)
        }
        #expect(acknowledged.count > 20, "the child acknowledged only \(acknowledged.count) batches")
    }
}

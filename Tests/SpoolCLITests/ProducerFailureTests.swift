#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SpoolTestSupport
import Testing

/// `spool produce` against a broker that goes away for good, and against a broker whose
/// disk fills up (a real tmpfs): it stops at the first record that fails for good, says
/// what was acknowledged, and an idempotent producer is never stuck on its sequence.
@Suite struct ProducerFailureTests {
    /// A file of `count` lines `prefix-N-` padded to `bytes` with hex of a seeded generator
    /// (incompressible enough for a full-disk test); returns its path.
    static func inputFile(_ prefix: String, count: Int, bytes: Int, seed: UInt64) throws -> String {
        var random = SeededRandom(seed: seed)
        let path = NSTemporaryDirectory() + "spool-input-" + UUID().uuidString
        FileManager.default.createFile(atPath: path, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? out.close() }
        var chunk = Data()
        let hex = Array("0123456789abcdef".utf8)
        for i in 0..<count {
            var line = Array("\(prefix)-\(i)-".utf8)
            while line.count < bytes { line.append(hex[Int(random.next() & 15)]) }
            line.append(0x0A)
            chunk.append(contentsOf: line)
            if chunk.count >= 1 << 20 { out.write(chunk); chunk.removeAll(keepingCapacity: true) }
        }
        out.write(chunk)
        return path
    }

    /// Runs `spool ARGS < input` to completion, bounded in time; the status (nil: still
    /// running at the bound, then killed), its stderr and how long it took.
    static func spool(_ arguments: [String], input: String, timeoutSeconds: Double) throws -> (status: Int32?, stderr: String, seconds: Double) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Executables.path("spool"))
        p.arguments = arguments
        p.standardInput = FileHandle(forReadingAtPath: input)
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        let errData = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let start = Date()
        try p.run()
        let deadline = start.addingTimeInterval(timeoutSeconds)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        let timedOut = p.isRunning
        if timedOut { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        group.wait()
        return (timedOut ? nil : p.terminationStatus, String(decoding: errData.data, as: UTF8.self), Date().timeIntervalSince(start))
    }

    /// "N lines acknowledged; line L was the first not acknowledged" → (N, L).
    static func summary(_ stderr: String) -> (acknowledged: Int, firstFailed: Int)? {
        guard let range = stderr.range(of: #"\d+ lines? acknowledged; line \d+ was the first not acknowledged"#, options: .regularExpression) else { return nil }
        let numbers = stderr[range].split { !$0.isNumber }.compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    /// The broker is killed (for good) while `spool produce` streams a large input. Before,
    /// the producer went on reading a window of 65,536 lines per delivery timeout: 3 M lines
    /// took 46 windows. Now the first record that times out stops the run, within about one
    /// delivery timeout of the kill, with a summary; what it acknowledged is in the log.
    @Test func aBrokerGoneForGoodStopsTheRunAtTheFirstFailure() throws {
        let lines = 3_000_000
        let input = try Self.inputFile("line", count: lines, bytes: 0, seed: 1)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "t", "--partitions", "1"]).status == 0)
        let deliveryTimeoutSeconds = 3.0
        let args = ["produce", "t", "--broker", broker.address, "--acks", "1", "--delivery-timeout-ms", String(Int(deliveryTimeoutSeconds * 1000))]
        let killedAt = KillTime()
        let pid = broker.pid
        let killer = Thread {
            // Let it produce for a moment, then the broker dies for good.
            usleep(1_500_000)
            killedAt.set(Date())
            kill(pid, SIGKILL)
        }
        killer.start()
        // Bounded: the old behaviour needs lines / 65,536 windows × the delivery timeout (≈ 137 s).
        let windows = Double(lines) / 65_536
        let run = try Self.spool(args, input: input, timeoutSeconds: windows * deliveryTimeoutSeconds * 3 / 4)
        broker.process.waitUntilExit()
        let afterKill = Date().timeIntervalSince(killedAt.get() ?? Date())
        #expect(run.status != nil, "still running \(run.seconds) s after the start: it did not stop at the first failure")
        #expect(run.status != 0)
        let summary = Self.summary(run.stderr)
        #expect(summary != nil, "\(run.stderr)")
        #expect(run.stderr.contains("stopped reading input after it"), "\(run.stderr)")
        #expect(run.stderr.components(separatedBy: "not acknowledged:").count - 1 == 1, "one failure printed, the rest counted: \(run.stderr.prefix(2000))")
        #expect(afterKill < windows * deliveryTimeoutSeconds / 2, "exited \(afterKill) s after the kill")
        print("killed mid-run: exited \(afterKill) s after the kill (delivery timeout \(deliveryTimeoutSeconds) s); \(run.stderr.suffix(300))")

        // What it called acknowledged is in the log: the broker comes back on the same data.
        guard let summary else { return }
        #expect(summary.acknowledged > 0 && summary.acknowledged < lines)
        let second = try BrokerProcess(arguments: ["broker", "--data-dir", broker.directory, "--listen", "127.0.0.1:0"])
        let consumed = try second.spool(["consume", "t", "--from", "beginning", "--exit-at-end"])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        let values = consumed.stdout.split(separator: "\n")
        #expect(values.count >= summary.acknowledged)
        #expect(values.prefix(summary.firstFailed - 1).enumerated().allSatisfy { $0.element.hasPrefix("line-\($0.offset)-") },
                "the lines before the first failure are in the log, in order")
        withExtendedLifetime(broker) {} // its data directory is the second broker's
    }

    /// `spool-perf produce` likewise: the broker dies mid-run, sending stops at the first
    /// failure and the run exits non-zero within about one delivery timeout, saying how many
    /// records were acknowledged (before, it queued all 20 M records against the dead broker).
    @Test func spoolPerfStopsSendingAtTheFirstFailure() throws {
        let broker = try BrokerProcess()
        let pid = broker.pid
        let killer = Thread {
            usleep(1_500_000)
            kill(pid, SIGKILL)
        }
        killer.start()
        let started = Date()
        let r = try runCommand("spool-perf", ["produce", "--broker", broker.address, "--topic", "perf", "--records", "20000000",
                                              "--record-size", "100", "--throughput", "200000", "--delivery-timeout-ms", "3000"],
                               timeoutSeconds: 90)
        #expect(r.status != 0)
        #expect(r.stderr.contains("records acknowledged") && r.stderr.contains("stopped sending at the first failure"), "\(r.stderr.suffix(1000))")
        print("spool-perf after the kill: exited \(Date().timeIntervalSince(started) - 1.5) s after it; \(r.stderr.suffix(300))")
    }

    /// `--keep-going` keeps the old behaviour: every line is sent and each failure reported.
    @Test func keepGoingSendsEveryLine() throws {
        let input = try Self.inputFile("k", count: 300, bytes: 8, seed: 2)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "small", "--partitions", "1", "--config", "max.message.bytes=1024"]).status == 0)
        // Every 100th line is too large for the topic: it fails alone; the others go through.
        var text = try String(contentsOfFile: input, encoding: .utf8).split(separator: "\n").map(String.init)
        for i in stride(from: 99, to: text.count, by: 100) { text[i] = String(repeating: "x", count: 2_000) }
        try (text.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let kept = try Self.spool(["produce", "small", "--broker", broker.address, "--keep-going", "--linger-ms", "0"], input: input, timeoutSeconds: 60)
        #expect(kept.status == 1)
        let keptSummary = Self.summary(kept.stderr)
        #expect(keptSummary?.acknowledged == 297 && keptSummary?.firstFailed == 100, "\(kept.stderr)")
        #expect(kept.stderr.contains("(3 lines failed in all)") && !kept.stderr.contains("stopped reading"), "\(kept.stderr)")
        let stopped = try Self.spool(["produce", "small", "--broker", broker.address, "--linger-ms", "0"], input: input, timeoutSeconds: 60)
        #expect(stopped.status == 1)
        #expect(Self.summary(stopped.stderr)?.firstFailed == 100, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("stopped reading input after it"), "\(stopped.stderr)")
    }
}

/// When the broker was killed (set by the killer thread, read by the test).
final class KillTime: @unchecked Sendable { // guarded by `lock`
    private let lock = NSLock()
    private var date: Date?
    func set(_ d: Date) { lock.lock(); date = d; lock.unlock() }
    func get() -> Date? { lock.lock(); defer { lock.unlock() }; return date }
}

/// A tmpfs of a few MiB mounted for one test (we are root here and in CI).
final class TmpfsDisk {
    let path: String

    /// Whether this machine lets us mount a tmpfs (root, not refused by a container).
    static let canMount: Bool = {
        guard let disk = try? TmpfsDisk(megabytes: 1) else { return false }
        disk.unmount()
        return true
    }()

    init(megabytes: Int) throws {
        path = NSTemporaryDirectory() + "spool-tmpfs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let r = try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard r == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw ProcessError("mount -t tmpfs refused (status \(r))")
        }
    }

    func unmount() {
        _ = try? Self.run("/bin/umount", ["-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}

/// A real broker whose data directory is a small tmpfs that fills up under an idempotent,
/// acks=all, uncompressed producer of 1 KiB records (the report: the next runs were refused
/// with "producer 33 sent sequence 384; expected 1408" and never finished).
@Suite(.enabled(if: TmpfsDisk.canMount, "mount -t tmpfs is refused on this machine (needs root): the full-disk test cannot run"))
struct FullDiskCLITests {
    @Test func aFullDiskNeverWedgesTheIdempotentProducerAndSpaceFreedIsUsedWithoutARestart() throws {
        let disk = try TmpfsDisk(megabytes: 24)
        defer { disk.unmount() }
        // Ballast to free later: "once space is freed".
        let ballast = disk.path + "/ballast"
        FileManager.default.createFile(atPath: ballast, contents: Data(count: 6 << 20))
        let data = disk.path + "/data"
        let broker = try BrokerProcess(arguments: ["broker", "--data-dir", data, "--listen", "127.0.0.1:0"], directory: data)
        #expect(try broker.spool(["topic", "create", "t", "--partitions", "1"]).status == 0)
        let records = 30_000 // 30 MiB of 1 KiB records: more than the disk holds
        let inputs = try (1...2).map { run in try ProducerFailureTests.inputFile("run\(run)", count: records, bytes: 1024, seed: UInt64(run)) }
        defer { for input in inputs { try? FileManager.default.removeItem(atPath: input) } }
        let args = ["produce", "t", "--broker", broker.address, "--acks", "all", "--compression", "none", "--delivery-timeout-ms", "5000"]

        // Run 1 fills the disk and stops at its first failure.
        let first = try ProducerFailureTests.spool(args, input: inputs[0], timeoutSeconds: 120)
        #expect(first.status == 1, "\(first.stderr)")
        let firstSummary = ProducerFailureTests.summary(first.stderr)
        #expect(firstSummary != nil, "\(first.stderr)")
        // Run 2 on the still full disk: refused quickly and cleanly, never for its sequence.
        let second = try ProducerFailureTests.spool(args, input: inputs[1], timeoutSeconds: 120)
        #expect(second.status == 1, "\(second.stderr)")
        for run in [first, second] {
            #expect(!run.stderr.contains("sequence") && !run.stderr.contains("FAILED_PRECONDITION") && !run.stderr.contains("ABORTED"),
                    "\(run.stderr.prefix(2000))")
        }
        // Space is freed: new produces succeed, no restart.
        try FileManager.default.removeItem(atPath: ballast)
        let after = (0..<200).map { "after-\($0)" }.joined(separator: "\n") + "\n"
        let third = try broker.spool(["produce", "t", "--acks", "all", "--compression", "none", "--delivery-timeout-ms", "30000"], stdin: after)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(broker.process.isRunning)

        // Every acknowledged record reads back, none twice.
        let consumed = try broker.spool(["consume", "t", "--from", "beginning", "--exit-at-end", "--format", "%v\\n"])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        // "run1-17-<hex>" → "run1-17"; "after-3" stays.
        let values = consumed.stdout.split(separator: "\n").map { $0.split(separator: "-", maxSplits: 2).prefix(2).joined(separator: "-") }
        #expect(Set(values).count == values.count, "a record is stored twice")
        let stored = Set(values)
        if let firstSummary {
            let missing = (0..<(firstSummary.firstFailed - 1)).filter { !stored.contains("run1-\($0)") }
            #expect(missing.isEmpty, "acknowledged but missing: \(missing.prefix(10))")
            #expect(values.filter { $0.hasPrefix("run1-") }.count >= firstSummary.acknowledged)
        }
        if let s = ProducerFailureTests.summary(second.stderr) {
            #expect(values.filter { $0.hasPrefix("run2-") }.count >= s.acknowledged)
        }
        #expect((0..<200).allSatisfy { stored.contains("after-\($0)") })
        print("full disk: run 1 \(firstSummary.map { "\($0.acknowledged) acknowledged" } ?? "?") in \(first.seconds) s; run 2 \(second.seconds) s; \(values.count) records stored")
    }
}

import Foundation
import SpoolTestSupport
import Testing

/// A long-running `spool consume` process whose output is collected as it arrives.
final class ConsumerProcess: @unchecked Sendable { // `out` and `err` are guarded by `lock`
    let process = Process()
    private let stdout = Pipe(), stderr = Pipe()
    private var out = Data(), err = Data()
    private let lock = NSLock()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Executables.path("spool"))
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        stdout.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            self.lock.lock(); self.out.append(data); self.lock.unlock()
        }
        stderr.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            self.lock.lock(); self.err.append(data); self.lock.unlock()
        }
        try process.run()
    }

    /// Lines printed so far.
    var lines: [String] {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    var errorText: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: err, as: UTF8.self)
    }

    /// Sends `signal` and waits for the exit, at most 20 s; then SIGKILL (a consumer that does
    /// not exit on SIGTERM fails its test instead of hanging the run).
    func kill(_ signal: Int32) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            Issue.record("spool consume did not exit within 20 s of signal \(signal)")
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        kill(SIGKILL)
        stdout.fileHandleForReading.readabilityHandler = nil
        stderr.fileHandleForReading.readabilityHandler = nil
    }
}

@Suite("spool consume --group: two processes share a topic's partitions")
struct GroupConsumeTests {
    /// Records "p:o v" printed by one consumer, by partition.
    static func partitions(_ lines: [String]) -> Set<Int> {
        Set(lines.compactMap { Int($0.split(separator: ":").first ?? "") })
    }

    static func values(_ lines: [String]) -> Set<String> {
        Set(lines.compactMap { $0.split(separator: " ").last.map(String.init) })
    }

    @Test("The broker's config file sets the group coordinator (Kafka's key names)")
    func groupSettingsInTheConfigFile() throws {
        let dir = NSTemporaryDirectory() + "spool-group-conf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/spool.properties"
        // Sessions must be at least 20 s: a consumer asking for 10 s is refused.
        try "data.dir=\(dir)/data\nlisten=127.0.0.1:0\ngroup.min.session.timeout.ms=20000\noffsets.retention.minutes=60\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let broker = try BrokerProcess(arguments: ["broker", "--config", file, "--kafka-listen", "none"])
        _ = try broker.spool(["topic", "create", "t"])
        let r = try broker.spool(["consume", "t", "--group", "g", "--exit-at-end"])
        #expect(r.status != 0 && r.stderr.contains("session timeout"), "\(r.stderr)")
        try "data.dir=\(dir)/data\ngroup.min.session.timeout.ms=9000\ngroup.max.session.timeout.ms=8000\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try runCommand("spool", ["broker", "--config", file])
        #expect(bad.status != 0 && bad.stderr.contains("group.min.session.timeout.ms"))
    }

    /// The member that stops says so (LeaveGroup): with a session timeout of two minutes,
    /// the only other way its partitions could move within the 60 s allowed here is a
    /// leave, so the check holds on a loaded machine and fails if the leave is not sent.
    @Test("A member stopped with SIGTERM leaves the group: the other takes over without waiting for its session to expire")
    func gracefulStopHandsOverAtOnce() throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        #expect(try broker.spool(["topic", "create", "handover", "--partitions", "2"]).status == 0)
        let sessionSeconds = 120
        let args = ["consume", "handover", "--group", "h", "--from", "beginning", "--format", "%p:%o %v\\n", "--broker", broker.address,
                    "--session-timeout-ms", String(sessionSeconds * 1000)]
        let one = try ConsumerProcess(args)
        let two = try ConsumerProcess(args)
        #expect(eventually(seconds: 60) { one.errorText.contains("handover-") && two.errorText.contains("handover-")
            && !one.errorText.contains("handover-0,handover-1") && !two.errorText.contains("handover-0,handover-1") },
                "both members got one partition: \(one.errorText) | \(two.errorText)")
        let stopped = Date()
        two.kill(SIGTERM)
        #expect(two.process.terminationStatus == 128 + SIGTERM)
        // A member that left is replaced within a heartbeat (3 s); one that did not would hold its partition for the session.
        #expect(eventually(seconds: Double(sessionSeconds) / 2) { one.errorText.contains("handover-0,handover-1") }, "\(one.errorText)")
        print("gracefulStopHandsOverAtOnce: handed over \(String(format: "%.1f", Date().timeIntervalSince(stopped))) s after SIGTERM (session \(sessionSeconds) s)")
        for p in 0..<2 {
            _ = try broker.spool(["produce", "handover", "--partition", String(p)], stdin: "after-\(p)\n")
        }
        #expect(eventually(seconds: 30) { Self.values(one.lines).isSuperset(of: ["after-0", "after-1"]) })
        one.kill(SIGTERM)
    }

    @Test("Two members split four partitions; when one is killed the other takes its partitions over")
    func twoMembersSplitAndTakeOver() throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        #expect(try broker.spool(["topic", "create", "shared", "--partitions", "4"]).status == 0)
        func produce(_ prefix: String) throws -> Set<String> {
            var all = Set<String>()
            for p in 0..<4 {
                let values = (0..<10).map { "\(prefix)-p\(p)-\($0)" }
                all.formUnion(values)
                let r = try broker.spool(["produce", "shared", "--partition", String(p), "--acks", "all"], stdin: values.joined(separator: "\n") + "\n")
                #expect(r.status == 0, "\(r.stderr)")
            }
            return all
        }
        let first = try produce("a")

        let args = ["consume", "shared", "--group", "split", "--from", "beginning", "--format", "%p:%o %v\\n", "--broker", broker.address]
        let one = try ConsumerProcess(args)
        let two = try ConsumerProcess(args)
        let splitSeen = eventually(seconds: 60) {
            Self.values(one.lines).union(Self.values(two.lines)).isSuperset(of: first)
                && !one.lines.isEmpty && !two.lines.isEmpty
        }
        #expect(splitSeen, "one: \(one.lines.count) lines, \(one.errorText); two: \(two.lines.count) lines, \(two.errorText)")
        let onePartitions = Self.partitions(one.lines), twoPartitions = Self.partitions(two.lines)
        #expect(onePartitions.count == 2 && twoPartitions.count == 2, "one \(onePartitions), two \(twoPartitions)")
        #expect(onePartitions.isDisjoint(with: twoPartitions), "one \(onePartitions), two \(twoPartitions)")
        let members = try broker.spool(["group", "members", "split"])
        #expect(members.stdout.hasPrefix("state Stable generation "), "\(members.stdout)\(members.stderr)")
        let owned = members.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(owned.count == 2 && Set(owned.flatMap { $0.split(separator: ",") }).count == 4, "\(members.stdout)")
        #expect(try broker.spool(["group", "members", "nobody"]).status != 0)

        // One member dies without a word: after its session timeout the survivor gets every partition.
        two.kill(SIGKILL)
        let before = one.lines.count
        let second = try produce("b")
        let tookOver = eventually(seconds: 60) { Self.values(one.lines).isSuperset(of: second) }
        #expect(tookOver, "the survivor printed \(one.lines.count - before) new lines; stderr: \(one.errorText)")
        #expect(Self.partitions(Array(one.lines[before...])) == [0, 1, 2, 3])
        #expect(one.errorText.contains("shared-0,shared-1,shared-2,shared-3"), "the takeover is reported: \(one.errorText)")
        one.kill(SIGTERM)
    }
}

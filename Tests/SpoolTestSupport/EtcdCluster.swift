import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Real etcd members (Debian's `etcd`, 3.4) on free loopback ports, with their data directories
/// under one temporary folder, for the cluster tests. Each member runs under
/// `timeout --signal=KILL <lifetime>` in a process group of its own, so a member outlives its
/// test by at most `lifetimeSeconds` even if the test process dies; `stop()` (also run by
/// `withEtcdCluster` on every exit path, and by deinit) kills every member and deletes the folder.
///
/// Data directories go to /dev/shm when it exists (etcd fsyncs every write; on a disk shared
/// with other test suites one fsync can take seconds), else the temporary directory
/// (`SPOOL_ETCD_DIR` overrides both). Process waits (start, health, kill) block a thread, so the
/// async API runs them on Dispatch threads, never on Swift's cooperative pool (2 threads on 2
/// cores: a blocked one starves every other async test). `withEtcdCluster` runs one cluster at a
/// time per test process.
///
/// ```swift
/// try await withEtcdCluster(members: 3) { etcd in
///     let client = try EtcdClient(configuration: EtcdClientConfiguration(endpoints: etcd.endpoints))
///     await etcd.kill(0) // kill -9 of member 0
/// }
/// ```
public final class EtcdCluster: @unchecked Sendable { // mutated by the test's task only; `lock` guards `processes`
    public struct Member: Sendable {
        public var name: String
        public var clientPort: Int
        public var peerPort: Int
        public var dataDirectory: String
        public var clientURL: String { "http://127.0.0.1:\(clientPort)" }
        public var peerURL: String { "http://127.0.0.1:\(peerPort)" }
    }

    public let directory: String
    public private(set) var members: [Member] = []
    public let lifetimeSeconds: Int
    private var processes: [Process?]
    private let lock = NSLock()
    private var stopped = false

    /// Every member's client URL, comma-separated (what `--etcd` takes).
    public var endpoints: String { members.map(\.clientURL).joined(separator: ",") }

    /// Starts `count` members as one new cluster and waits (at most `startSeconds`) until every one
    /// reports healthy. Retries with new ports (at most 3 times) when a port was taken meanwhile.
    public init(members count: Int = 1, lifetimeSeconds: Int = 300, startSeconds: Double = 30) throws {
        precondition(count >= 1 && count <= 5, "1 to 5 etcd members")
        directory = Self.baseDirectory + "spool-etcd-" + UUID().uuidString
        self.lifetimeSeconds = lifetimeSeconds
        processes = Array(repeating: nil, count: count)
        guard FileManager.default.isExecutableFile(atPath: Self.etcdPath) else {
            throw ProcessError("\(Self.etcdPath) is missing: run tools/install-deps.sh (etcd-server)")
        }
        var lastError: Error?
        for _ in 0..<3 {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let ports = try Self.freePorts(2 * count)
                members = (0..<count).map { i in
                    Member(name: "m\(i)", clientPort: ports[2 * i], peerPort: ports[2 * i + 1], dataDirectory: directory + "/m\(i)")
                }
                for i in 0..<count { try launch(i) }
                try waitHealthyNow(timeoutSeconds: startSeconds)
                return
            } catch {
                lastError = error
                killAll()
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        throw lastError ?? ProcessError("etcd did not start")
    }

    deinit { stop() }

    static var baseDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["SPOOL_ETCD_DIR"] { return dir.hasSuffix("/") ? dir : dir + "/" }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue { return "/dev/shm/" }
        return NSTemporaryDirectory()
    }

    static let etcdPath = "/usr/bin/etcd"
    static let etcdctlPath = "/usr/bin/etcdctl"

    private func launch(_ i: Int) throws {
        let member = members[i]
        let cluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = [
            "--signal=KILL", String(lifetimeSeconds), Self.etcdPath,
            "--name", member.name, "--data-dir", member.dataDirectory,
            "--listen-client-urls", member.clientURL, "--advertise-client-urls", member.clientURL,
            "--listen-peer-urls", member.peerURL, "--initial-advertise-peer-urls", member.peerURL,
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "spool-test-" + (directory as NSString).lastPathComponent,
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ]
        let logPath = directory + "/\(member.name).log"
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        lock.lock()
        processes[i] = process
        lock.unlock()
    }

    /// Starts a cluster off the cooperative pool (see `init`).
    public static func start(members count: Int = 1) async throws -> EtcdCluster {
        try await offPool { try EtcdCluster(members: count) }
    }

    /// kill -9 of member `i` (etcd and its `timeout` wrapper), waiting until it is gone.
    public func kill(_ i: Int) async { await offPool { self.killNow(i) } }

    /// Starts member `i` again with the same command and data (it rejoins the cluster).
    public func restart(_ i: Int) async throws { try await offPool { try self.restartNow(i) } }

    /// Waits until the members in `which` (default all) are healthy (see `waitHealthyNow`).
    public func waitHealthy(_ which: [Int]? = nil, timeoutSeconds: Double = 30) async throws {
        try await offPool { try self.waitHealthyNow(which, timeoutSeconds: timeoutSeconds) }
    }

    /// Kills every member and deletes the folder, off the cooperative pool.
    public func stopAsync() async { await offPool { self.stop() } }

    public func killNow(_ i: Int) {
        lock.lock()
        let process = processes[i]
        processes[i] = nil
        lock.unlock()
        guard let process else { return }
        Self.killGroup(process)
    }

    /// SIGSTOP of member `i`: it keeps its sockets (connections are accepted by the kernel) but
    /// answers nothing, like a member on a frozen host. `resume` sends SIGCONT.
    public func pause(_ i: Int) { signalMember(i, SIGSTOP) }
    public func resume(_ i: Int) { signalMember(i, SIGCONT) }

    private func signalMember(_ i: Int, _ signal: Int32) {
        lock.lock()
        let process = processes[i]
        lock.unlock()
        guard let process else { return }
        for child in Self.childPids(of: process.processIdentifier) { _ = Glibc.kill(child, signal) }
    }

    public func restartNow(_ i: Int) throws {
        killNow(i)
        try launch(i)
    }

    /// Whether member `i` is running (as far as this helper knows).
    public func isRunning(_ i: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return processes[i]?.isRunning ?? false
    }

    /// Waits until every member in `which` (default all) answers `endpoint health` (etcd has a
    /// leader and serves a quorum read).
    public func waitHealthyNow(_ which: [Int]? = nil, timeoutSeconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        for i in which ?? Array(members.indices) {
            while true {
                if isHealthy(i) { break }
                lock.lock()
                let exited = processes[i].map { !$0.isRunning } ?? true
                lock.unlock()
                if exited { throw ProcessError("etcd member \(i) exited: \(logText(i).suffix(2000))") }
                if Date() > deadline { throw ProcessError("etcd member \(i) not healthy within \(timeoutSeconds) s: \(logText(i).suffix(2000))") }
                usleep(100_000)
            }
        }
    }

    /// One `etcdctl endpoint health` of member `i` (bounded to about 2 s).
    public func isHealthy(_ i: Int) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.etcdctlPath)
        process.arguments = ["--endpoints", members[i].clientURL, "--dial-timeout", "1s", "--command-timeout", "1s", "endpoint", "health"]
        process.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return false
        }
        return process.terminationStatus == 0
    }

    /// What member `i` logged.
    public func logText(_ i: Int) -> String {
        (try? String(contentsOfFile: directory + "/\(members[i].name).log", encoding: .utf8)) ?? ""
    }

    /// Kills every member and deletes the folder. Idempotent.
    public func stop() {
        lock.lock()
        let done = stopped
        stopped = true
        lock.unlock()
        guard !done else { return }
        killAll()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func killAll() {
        lock.lock()
        let all = processes.compactMap { $0 }
        processes = processes.map { _ in nil }
        lock.unlock()
        for process in all { Self.killGroup(process) }
    }

    /// SIGKILL to the `timeout` wrapper's process group (it made one: etcd is in it), then waits
    /// (at most 10 s) until the wrapper exited and etcd is gone, so its ports and data are free.
    static func killGroup(_ process: Process) {
        let pid = process.processIdentifier
        let children = childPids(of: pid)
        if Glibc.kill(-pid, SIGKILL) != 0 { _ = Glibc.kill(pid, SIGKILL) }
        for child in children { _ = Glibc.kill(child, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        for child in children {
            while isAlive(child) && Date() < deadline { usleep(10_000) }
        }
    }

    static func childPids(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Running (not a zombie waiting for its reaper).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// `count` distinct ports the kernel handed out as free on 127.0.0.1 (bound, read, closed).
    public static func freePorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        for _ in 0..<count {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw ProcessError("socket() failed") }
            sockets.append(s)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw ProcessError("bind() failed") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &length) }
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}

/// Runs `body` with a fresh etcd cluster of `members` members and stops it on every exit path.
/// One cluster at a time per test process: etcd members are heavy on a 2-core machine, and the
/// timings the tests check (lease TTLs) suffer when several clusters compete.
public func withEtcdCluster<T>(members: Int = 1, _ body: (EtcdCluster) async throws -> T) async throws -> T {
    await EtcdClusterGate.shared.acquire()
    let cluster: EtcdCluster
    do {
        cluster = try await EtcdCluster.start(members: members)
    } catch {
        await EtcdClusterGate.shared.release()
        throw error
    }
    do {
        let result = try await body(cluster)
        await cluster.stopAsync()
        await EtcdClusterGate.shared.release()
        return result
    } catch {
        await cluster.stopAsync()
        await EtcdClusterGate.shared.release()
        throw error
    }
}

/// Runs blocking work (process waits) on a Dispatch thread and awaits it.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

public func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}

/// A FIFO async mutex: one etcd cluster at a time.
actor EtcdClusterGate {
    static let shared = EtcdClusterGate()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}

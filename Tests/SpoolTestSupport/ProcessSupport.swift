import Foundation

/// The package's built executables (`swift build` puts them in .build/debug; tools/test.sh builds first).
public enum Executables {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ name: String) throws -> String {
        if let dir = ProcessInfo.processInfo.environment["SPOOL_BIN_DIR"] { return dir + "/" + name }
        let path = root.appendingPathComponent(".build/debug/" + name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProcessError("\(path) is missing: run `swift build` first (tools/test.sh does)")
        }
        return path
    }
}

public struct ProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What a finished command printed and returned.
public struct CommandResult: Sendable {
    public var stdout: String
    public var stderr: String
    public var status: Int32
}

/// Runs an executable to completion with optional standard input, bounded in time.
public func runCommand(_ executable: String, _ arguments: [String], stdin: String? = nil, timeoutSeconds: Double = 60) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try Executables.path(executable))
    process.arguments = arguments
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let outData = DataBox(), errData = DataBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        throw ProcessError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeoutSeconds) s")
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(stdout: String(decoding: outData.data, as: UTF8.self), stderr: String(decoding: errData.data, as: UTF8.self), status: process.terminationStatus)
}

/// Bytes filled by one reader thread and read after it finished (the DispatchGroup orders them).
public final class DataBox: @unchecked Sendable {
    public var data = Data()
    public init() {}
}

/// A `spool broker` process on 127.0.0.1 with an ephemeral port and a temporary data directory.
public final class BrokerProcess: @unchecked Sendable { // the log is guarded by `lock`
    public let directory: String
    public let process = Process()
    let output = Pipe()
    public private(set) var port = 0
    private var log = Data()
    private let lock = NSLock()

    public var address: String { "127.0.0.1:\(port)" }
    /// HOST:PORT of the admin HTTP listener, from the banner (nil when it is off).
    public var adminAddress: String? {
        guard let range = logText.range(of: #"admin http://[^/]+/"#, options: .regularExpression) else { return nil }
        return String(logText[range].dropFirst("admin http://".count).dropLast())
    }
    public var pid: Int32 { process.processIdentifier }

    /// The Kafka listener's port, from the banner ("Kafka clients: …:PORT", or for a listener
    /// of another protocol "Kafka clients SASL_SSL: …:PORT"); waits for it.
    public func kafkaPort(protocol name: String? = nil) throws -> Int {
        let deadline = Date().addingTimeInterval(20)
        let pattern = "Kafka clients\(name.map { " " + $0 } ?? ""): \\S+:\\d+"
        while Date() < deadline {
            if let range = logText.range(of: pattern, options: .regularExpression) {
                return Int(logText[range].split(separator: ":").last!)!
            }
            usleep(20_000)
        }
        throw ProcessError("no Kafka listener in: \(logText)")
    }

    /// Starts `spool broker` with `arguments` (default: a temporary data directory and ephemeral
    /// ports for both listeners, so that brokers of tests running in parallel never collide).
    public init(arguments: [String]? = nil, directory: String = NSTemporaryDirectory() + "spool-cli-" + UUID().uuidString) throws {
        self.directory = directory
        process.executableURL = URL(fileURLWithPath: try Executables.path("spool"))
        var arguments = arguments ?? ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0"]
        // Every listener gets an ephemeral port unless the arguments name one (not the
        // defaults 9092 and 9644): suites run brokers in parallel.
        if arguments.first == "broker" && !arguments.contains(where: { $0.hasPrefix("--kafka-listen") }) {
            arguments += ["--kafka-listen", "127.0.0.1:0"]
        }
        if arguments.first == "broker" && !arguments.contains(where: { $0.hasPrefix("--http-listen") }) {
            arguments += ["--http-listen", "127.0.0.1:0"]
        }
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.log.append(data)
            self.lock.unlock()
        }
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let text = self.logText
            if let range = text.range(of: #":(\d+), data in"#, options: .regularExpression) {
                port = Int(text[range].dropFirst().prefix { $0.isNumber })!
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        process.terminate()
        throw ProcessError("broker did not start: \(logText)")
    }

    public var logText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: log, as: UTF8.self)
    }

    /// Resident memory of the broker process, in bytes.
    public var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    public func terminate() -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        drainLog()
        return process.terminationStatus
    }

    /// Takes what the exited process wrote last (the readability handler may not have
    /// run for it yet), so the log is complete once the process is gone.
    private func drainLog() {
        output.fileHandleForReading.readabilityHandler = nil
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        lock.lock()
        log.append(rest)
        lock.unlock()
    }

    public func spool(_ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        try runCommand("spool", arguments + ["--broker", address], stdin: stdin)
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        output.fileHandleForReading.readabilityHandler = nil
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A long-running `spool` command (a tailing consume, say) whose output is collected as it comes.
public final class SpoolProcess: @unchecked Sendable { // out/err are guarded by `lock`
    public let process = Process()
    private let stdoutPipe = Pipe(), stderrPipe = Pipe(), stdinPipe = Pipe()
    private var out = Data(), err = Data()
    private let lock = NSLock()

    public init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Executables.path("spool"))
        process.arguments = arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = stdinPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock(); self.out.append(d); self.lock.unlock()
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock(); self.err.append(d); self.lock.unlock()
        }
        try process.run()
    }

    /// Writes to the process's standard input (which stays open until `closeInput()`).
    public func write(_ text: String) {
        stdinPipe.fileHandleForWriting.write(Data(text.utf8))
    }

    public func closeInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    public var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: out, as: UTF8.self) }
    public var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: err, as: UTF8.self) }
    public var lines: [String] { stdout.split(separator: "\n").map(String.init) }

    /// Waits (bounded) until `condition` holds; false on timeout.
    @discardableResult
    public func wait(seconds: Double, until condition: (SpoolProcess) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(self) { return true }
            usleep(20_000)
        }
        return condition(self)
    }

    /// Waits (bounded) for the process to exit; its status, or nil if it is still running.
    public func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, read, released).
public func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Waits (bounded) until `condition` holds, polling; false if it never did.
public func eventually(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

import Foundation
import Testing

/// The package's built executables (`swift build` puts them in .build/debug; tools/test.sh builds first).
enum Executables {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ name: String) throws -> String {
        if let dir = ProcessInfo.processInfo.environment["SPOOL_BIN_DIR"] { return dir + "/" + name }
        let path = root.appendingPathComponent(".build/debug/" + name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ProcessError("\(path) is missing: run `swift build` first (tools/test.sh does)")
        }
        return path
    }
}

struct ProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// What a finished command printed and returned.
struct CommandResult {
    var stdout: String
    var stderr: String
    var status: Int32
}

/// Runs an executable to completion with optional standard input, bounded in time.
func runCommand(_ executable: String, _ arguments: [String], stdin: String? = nil, timeoutSeconds: Double = 60) throws -> CommandResult {
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
final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// A `spool broker` process on 127.0.0.1 with an ephemeral port and a temporary data directory.
final class BrokerProcess: @unchecked Sendable { // the log is guarded by `lock`
    let directory: String
    let process = Process()
    let output = Pipe()
    private(set) var port = 0
    private var log = Data()
    private let lock = NSLock()

    var address: String { "127.0.0.1:\(port)" }
    var pid: Int32 { process.processIdentifier }

    /// Starts `spool broker` with `arguments` (default: a temporary data directory and ephemeral
    /// ports for both listeners, so that brokers of tests running in parallel never collide).
    init(arguments: [String]? = nil, directory: String = NSTemporaryDirectory() + "spool-cli-" + UUID().uuidString) throws {
        self.directory = directory
        process.executableURL = URL(fileURLWithPath: try Executables.path("spool"))
        process.arguments = arguments ?? ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0"]
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

    var logText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: log, as: UTF8.self)
    }

    /// Resident memory of the broker process, in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    func terminate() -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    func spool(_ arguments: [String], stdin: String? = nil) throws -> CommandResult {
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

/// Waits (bounded) until `condition` holds, polling; false if it never did.
func eventually(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

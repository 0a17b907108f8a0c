import Foundation
import NIOCore
import SpoolRecords
@testable import SpoolStorage
import Synchronization

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "spool-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A batch of `count` records whose values encode `tag` and their index.
func makeBatch(_ count: Int, tag: String = "v", codec: CompressionCodec = .none, timestamp: Int64 = 1_700_000_000_000, valueBytes: Int = 0) -> ByteBuffer {
    var builder = RecordBatchBuilder(codec: codec)
    for i in 0..<count {
        let pad = valueBytes > 0 ? String(repeating: "x", count: valueBytes) : ""
        builder.append(key: nil, value: ByteBuffer(string: "\(tag)-\(i)\(pad)"), timestamp: timestamp + Int64(i))
    }
    return try! builder.build()
}

/// Decodes every record in a buffer of whole batches (a partial tail is ignored).
func decodeAll(_ buffer: ByteBuffer) throws -> [Record] {
    var reader = RecordBatchReader(buffer, allowPartialTail: true)
    var out: [Record] = []
    while let batch = try reader.next() { out += try batch.records() }
    return out
}

/// Real file I/O with switchable failures: writes fail with ENOSPC once `bytesBeforeFull`
/// bytes were written, fsync fails with EIO when `failFsync` is set. Counts writes and
/// fsyncs, and can hold fsyncs at a gate (`closeFsyncGate`) until the test opens it, so a
/// test can line callers up behind one fsync without depending on scheduling.
final class FaultyFileIO: FileIO, @unchecked Sendable {
    let real = PosixFileIO()
    let state = Mutex<(written: Int, limit: Int?, failFsync: Bool, fsyncs: Int, writes: Int)>((0, nil, false, 0, 0))
    /// Closed: fsyncs wait. `waiting` counts the fsyncs waiting now.
    private let gate = NSCondition()
    private var gateClosed = false
    private var gateWaiting = 0

    var fsyncCount: Int { state.withLock { $0.fsyncs } }
    /// Successful `pwrite` calls so far.
    var writeCount: Int { state.withLock { $0.writes } }

    /// Fsyncs from now on wait until `openFsyncGate()`.
    func closeFsyncGate() {
        gate.lock(); gateClosed = true; gate.unlock()
    }

    func openFsyncGate() {
        gate.lock(); gateClosed = false; gate.broadcast(); gate.unlock()
    }

    /// Fsyncs waiting at the closed gate.
    var fsyncsWaiting: Int {
        gate.lock(); defer { gate.unlock() }
        return gateWaiting
    }

    private func passFsyncGate() {
        gate.lock()
        gateWaiting += 1
        while gateClosed { gate.wait() }
        gateWaiting -= 1
        gate.unlock()
    }

    func fillDisk(afterBytes limit: Int) { state.withLock { $0.limit = $0.written + limit } }
    func failFsyncs(_ on: Bool) { state.withLock { $0.failFsync = on } }

    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 { try real.open(path, flags: flags, mode: mode) }
    func close(_ fd: Int32) { real.close(fd) }
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        let allowed = state.withLock { s -> Int in
            guard let limit = s.limit else { return bytes.count }
            return max(0, min(bytes.count, limit - s.written))
        }
        if allowed < bytes.count {
            // Write what "fits", as a full disk does, then fail.
            if allowed > 0 { try real.pwrite(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<allowed]), at: offset) }
            state.withLock { $0.written += allowed }
            throw ioError("write", ENOSPC)
        }
        try real.pwrite(fd, bytes, at: offset)
        state.withLock { s in
            s.written += bytes.count
            s.writes += 1
        }
    }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try real.pread(fd, into: buffer, at: offset)
    }
    func fsync(_ fd: Int32) throws {
        passFsyncGate()
        let fail = state.withLock { s -> Bool in
            s.fsyncs += 1
            return s.failFsync
        }
        if fail { throw ioError("fsync", EIO) }
        try real.fsync(fd)
    }
    func truncate(_ fd: Int32, to size: Int64) throws { try real.truncate(fd, to: size) }
    func size(_ fd: Int32) throws -> Int64 { try real.size(fd) }
    func duplicate(_ fd: Int32) throws -> Int32 { try real.duplicate(fd) }
    func lockExclusive(_ fd: Int32) throws -> Bool { try real.lockExclusive(fd) }
    func makeDirectory(_ path: String) throws { try real.makeDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func removeDirectory(_ path: String) throws { try real.removeDirectory(path) }
    func rename(_ from: String, to: String) throws { try real.rename(from, to: to) }
    func syncDirectory(_ path: String) throws {
        let fail = state.withLock { s -> Bool in
            s.fsyncs += 1
            return s.failFsync
        }
        if fail { throw ioError("fsync directory", EIO) }
        try real.syncDirectory(path)
    }
    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }
    func kind(of path: String) -> FileKind? { real.kind(of: path) }
}

/// Background work that runs only when the test says so, in the order it was handed
/// over: what a simulated crash interrupts is then the same on every run of a seed.
final class ManualExecutor: Sendable {
    private let jobs = Mutex<[@Sendable () -> Void]>([])

    var executor: StorageExecutor { { work in self.jobs.withLock { $0.append(work) } } }
    var pending: Int { jobs.withLock { $0.count } }

    /// Runs the queued jobs (and the ones they queue) until none is left, at most `limit`.
    func drain(limit: Int = 1000) {
        for _ in 0..<limit {
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
            job()
        }
    }
}

func openLog(_ dir: String, config: TopicConfig = TopicConfig(), io: FileIO = PosixFileIO(), clean: Bool = true,
             files: FileDescriptorCache? = nil, clock: @escaping @Sendable () -> Int64 = PartitionLog.wallClockMillis,
             executor: @escaping StorageExecutor = PartitionLog.globalExecutor) throws -> PartitionLog {
    try PartitionLog(directory: dir + "/t-0", topic: "t", partition: 0, config: config,
                     files: files ?? FileDescriptorCache(capacity: 64, io: io), cleanShutdown: clean, clock: clock, executor: executor)
}

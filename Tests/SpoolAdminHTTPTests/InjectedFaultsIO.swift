#if canImport(Glibc)
import Glibc
#endif
import SpoolStorage
import Synchronization

/// Real file I/O with faults the test switches on by file name: removals of matching
/// files fail with EIO, writes to matching files fail with ENOSPC.
final class InjectedFaultsIO: FileIO, Sendable {
    struct Faults {
        /// Removing a file whose path ends with this fails.
        var failRemovalsOf: String?
        /// Writing to a file whose path ends with this fails.
        var failWritesTo: String?
        var paths: [Int32: String] = [:]
    }

    let faults = Mutex(Faults())
    private let real = PosixFileIO()

    func failRemovals(of suffix: String?) { faults.withLock { $0.failRemovalsOf = suffix } }
    func failWrites(to suffix: String?) { faults.withLock { $0.failWritesTo = suffix } }

    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        let fd = try real.open(path, flags: flags, mode: mode)
        faults.withLock { $0.paths[fd] = path }
        return fd
    }
    func close(_ fd: Int32) {
        faults.withLock { _ = $0.paths.removeValue(forKey: fd) }
        real.close(fd)
    }
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        let fail = faults.withLock { f in f.failWritesTo.map { f.paths[fd]?.hasSuffix($0) ?? false } ?? false }
        if fail { throw ioError("write", ENOSPC) }
        try real.pwrite(fd, bytes, at: offset)
    }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int { try real.pread(fd, into: buffer, at: offset) }
    func fsync(_ fd: Int32) throws { try real.fsync(fd) }
    func truncate(_ fd: Int32, to size: Int64) throws { try real.truncate(fd, to: size) }
    func size(_ fd: Int32) throws -> Int64 { try real.size(fd) }
    func duplicate(_ fd: Int32) throws -> Int32 { try real.duplicate(fd) }
    func lockExclusive(_ fd: Int32) throws -> Bool { try real.lockExclusive(fd) }
    func makeDirectory(_ path: String) throws { try real.makeDirectory(path) }
    func removeFile(_ path: String) throws {
        let fail = faults.withLock { f in f.failRemovalsOf.map { path.hasSuffix($0) } ?? false }
        if fail { throw ioError("unlink", EIO) }
        try real.removeFile(path)
    }
    func removeDirectory(_ path: String) throws { try real.removeDirectory(path) }
    func rename(_ from: String, to: String) throws { try real.rename(from, to: to) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }
    func kind(of path: String) -> FileKind? { real.kind(of: path) }
}

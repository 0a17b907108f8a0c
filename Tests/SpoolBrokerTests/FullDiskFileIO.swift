#if canImport(Glibc)
import Glibc
#endif
import SpoolStorage
import Synchronization

/// Real file I/O over a disk that can be made to fill up: once `limitWrites(toBytes:)`
/// is set, writes to segment files (paths containing `matching`) past that many more
/// bytes fail with ENOSPC after writing what fits, as a full disk does (a torn tail).
final class FullDiskFileIO: FileIO, Sendable {
    struct State {
        var bytesLeft: Int?
        var paths: [Int32: String] = [:]
        var refusedWrites = 0
    }

    let matching: String
    let state = Mutex(State())
    private let real = PosixFileIO()

    init(matching: String) { self.matching = matching }

    /// Writes past `bytes` more bytes fail with ENOSPC; nil: no limit.
    func limitWrites(toBytes bytes: Int?) { state.withLock { $0.bytesLeft = bytes } }
    var refusedWrites: Int { state.withLock { $0.refusedWrites } }

    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        let fd = try real.open(path, flags: flags, mode: mode)
        state.withLock { $0.paths[fd] = path }
        return fd
    }
    func close(_ fd: Int32) {
        state.withLock { _ = $0.paths.removeValue(forKey: fd) }
        real.close(fd)
    }
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        let fits = state.withLock { s -> Int in
            guard let left = s.bytesLeft, s.paths[fd]?.contains(matching) == true else { return bytes.count }
            let fits = min(left, bytes.count)
            s.bytesLeft = left - fits
            if fits < bytes.count { s.refusedWrites += 1 }
            return fits
        }
        if fits > 0 { try real.pwrite(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<fits]), at: offset) }
        if fits < bytes.count { throw ioError("write", ENOSPC) }
    }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int { try real.pread(fd, into: buffer, at: offset) }
    func fsync(_ fd: Int32) throws { try real.fsync(fd) }
    func truncate(_ fd: Int32, to size: Int64) throws { try real.truncate(fd, to: size) }
    func size(_ fd: Int32) throws -> Int64 { try real.size(fd) }
    func duplicate(_ fd: Int32) throws -> Int32 { try real.duplicate(fd) }
    func lockExclusive(_ fd: Int32) throws -> Bool { try real.lockExclusive(fd) }
    func makeDirectory(_ path: String) throws { try real.makeDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func removeDirectory(_ path: String) throws { try real.removeDirectory(path) }
    func rename(_ from: String, to: String) throws { try real.rename(from, to: to) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }
    func kind(of path: String) -> FileKind? { real.kind(of: path) }
}

import Foundation
import NIOConcurrencyHelpers
import SpoolStorage

/// Real file I/O with faults switched on by the test: fsync fails with EIO, or `dup`
/// fails with EMFILE (the process out of descriptors). Counts the `dup` attempts.
final class FaultyFileIO: FileIO, @unchecked Sendable {
    struct Faults {
        var fsync = false
        var duplicate = false
        var duplicateAttempts = 0
    }

    let faults = NIOLockedValueBox(Faults())
    private let real = PosixFileIO()

    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 { try real.open(path, flags: flags, mode: mode) }
    func close(_ fd: Int32) { real.close(fd) }
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws { try real.pwrite(fd, bytes, at: offset) }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int { try real.pread(fd, into: buffer, at: offset) }
    func fsync(_ fd: Int32) throws {
        if faults.withLockedValue({ $0.fsync }) { throw ioError("fsync", EIO) }
        try real.fsync(fd)
    }
    func truncate(_ fd: Int32, to size: Int64) throws { try real.truncate(fd, to: size) }
    func size(_ fd: Int32) throws -> Int64 { try real.size(fd) }
    func duplicate(_ fd: Int32) throws -> Int32 {
        let fail = faults.withLockedValue { f -> Bool in
            f.duplicateAttempts += 1
            return f.duplicate
        }
        if fail { throw ioError("dup", EMFILE) }
        return try real.duplicate(fd)
    }
    func lockExclusive(_ fd: Int32) throws -> Bool { try real.lockExclusive(fd) }
    func makeDirectory(_ path: String) throws { try real.makeDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func removeDirectory(_ path: String) throws { try real.removeDirectory(path) }
    func rename(_ from: String, to: String) throws { try real.rename(from, to: to) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }
    func kind(of path: String) -> FileKind? { real.kind(of: path) }
}

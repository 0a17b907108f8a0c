#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a path names, as far as storage cares.
public enum FileKind: Sendable {
    case file
    case directory
}

/// Every file-system operation the storage layer performs, behind one seam so that
/// tests can inject failures (a full disk, a failing fsync, no descriptors left) and
/// simulate a power loss (the storage tests' `SimulatedDisk` keeps written-but-unsynced
/// bytes and unsynced directory changes apart and drops them at a crash point).
///
/// Storage code never calls the POSIX file API directly: what bypasses this seam
/// escapes the power-loss simulator.
///
/// Errors are `StorageError`s carrying `errno`: code `.resourceExhausted` when
/// `open`/`dup` ran out of descriptors (EMFILE, ENFILE) or memory, `.io` otherwise.
public protocol FileIO: Sendable {
    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32
    func close(_ fd: Int32)
    /// Writes all of `bytes` at `offset` (retrying short writes), or throws.
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Reads up to `buffer.count` bytes at `offset`; returns how many (0 at end of file).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Flushes the file's data (and the metadata needed to read it) to stable storage.
    /// Says nothing about the file's name: that takes ``syncDirectory(_:)`` of its parent.
    func fsync(_ fd: Int32) throws
    func truncate(_ fd: Int32, to size: Int64) throws
    func size(_ fd: Int32) throws -> Int64
    /// A second descriptor of the same open file (for a zero-copy send); the caller closes it.
    func duplicate(_ fd: Int32) throws -> Int32
    /// Takes an exclusive advisory lock without waiting; false when another process holds it.
    func lockExclusive(_ fd: Int32) throws -> Bool

    /// Creates a directory; an existing one is fine.
    func makeDirectory(_ path: String) throws
    /// Removes a file; a missing one is fine.
    func removeFile(_ path: String) throws
    /// Removes an empty directory; a missing one is fine.
    func removeDirectory(_ path: String) throws
    /// Renames atomically (replacing `to` if it exists). Durable only after
    /// ``syncDirectory(_:)`` of both parents.
    func rename(_ from: String, to: String) throws
    /// fsyncs a directory, so that entries created, renamed or removed in it are durable.
    func syncDirectory(_ path: String) throws
    /// Names in a directory, without "." and "..".
    func listDirectory(_ path: String) throws -> [String]
    /// What `path` is, or nil if nothing is there.
    func kind(of path: String) -> FileKind?
}

/// The real thing: POSIX calls.
public struct PosixFileIO: FileIO {
    public init() {}

    public func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw ioError("open \(path)")
        }
    }

    public func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    public func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("write")
            }
            done += n
        }
    }

    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("read")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func fsync(_ fd: Int32) throws {
        guard Glibc.fdatasync(fd) == 0 else { throw ioError("fsync") }
    }

    public func truncate(_ fd: Int32, to size: Int64) throws {
        guard Glibc.ftruncate(fd, off_t(size)) == 0 else { throw ioError("truncate") }
    }

    public func size(_ fd: Int32) throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("fstat") }
        return Int64(st.st_size)
    }

    public func duplicate(_ fd: Int32) throws -> Int32 {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw ioError("dup") }
        return copy
    }

    public func lockExclusive(_ fd: Int32) throws -> Bool {
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw ioError("flock")
    }

    public func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw ioError("mkdir \(path)") }
    }

    public func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw ioError("unlink \(path)") }
    }

    public func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 && errno != ENOENT { throw ioError("rmdir \(path)") }
    }

    public func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 { throw ioError("rename \(from) to \(to)") }
    }

    public func syncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open directory \(path)") }
        defer { Glibc.close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw ioError("fsync directory \(path)") }
    }

    public func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ioError("opendir \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func kind(of path: String) -> FileKind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (st.st_mode & S_IFMT) == S_IFDIR ? .directory : .file
    }
}

/// A `StorageError` for a failed system call: `.resourceExhausted` when the process or
/// system ran out of descriptors or memory, `.io` otherwise; `errno` kept for callers.
public func ioError(_ what: String, _ code: Int32 = errno) -> StorageError {
    let kind: StorageError.Code = (code == EMFILE || code == ENFILE || code == ENOMEM) ? .resourceExhausted : .io
    return StorageError(kind, "\(what) failed: \(String(cString: strerror(code))) (errno \(code))", errno: code)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file operations the storage layer performs, behind a seam so that tests
/// can inject failures (a full disk, a failing fsync) into real files.
///
/// Every call either completes fully or throws a `StorageError` with code `.io`
/// naming the operation and `errno`.
public protocol FileIO: Sendable {
    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32
    func close(_ fd: Int32)
    /// Writes all of `bytes` at `offset` (retrying short writes), or throws.
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Reads up to `buffer.count` bytes at `offset`; returns how many (0 at end of file).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Flushes the file's data (and the metadata needed to read it) to stable storage.
    func fsync(_ fd: Int32) throws
    func truncate(_ fd: Int32, to size: Int64) throws
    func size(_ fd: Int32) throws -> Int64
}

/// The real thing: POSIX calls.
public struct PosixFileIO: FileIO {
    public init() {}

    public func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ioError("open \(path)") }
        return fd
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
}

func ioError(_ what: String, _ code: Int32 = errno) -> StorageError {
    StorageError(.io, "\(what) failed: \(String(cString: strerror(code))) (errno \(code))")
}

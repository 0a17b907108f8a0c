#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Bounds the number of open segment and index files across all partitions.
///
/// Files are opened on demand and kept open in least-recently-used order up to
/// `capacity`; a descriptor in use (inside `withDescriptor`) is never closed.
/// With thousands of partitions this keeps the broker far below the process
/// limit on open files (`ulimit -n`), at the cost of an `open` when a cold
/// partition is touched again.
public final class FileDescriptorCache: Sendable {
    struct Entry {
        var fd: Int32
        var users: Int
        var lastUse: UInt64
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Descriptors forgotten while in use, by descriptor: users left. Closed by the last release.
        var retired: [Int32: Int] = [:]
        var clock: UInt64 = 0
        var opens = 0
        /// Counts `forget` calls: an open that saw it change must not be cached.
        var forgets: UInt64 = 0
    }

    public let capacity: Int
    public let io: FileIO
    private let state = Mutex(State())

    public init(capacity: Int = 1024, io: FileIO = PosixFileIO()) {
        precondition(capacity >= 2, "file descriptor cache needs room for at least two files")
        self.capacity = capacity
        self.io = io
    }

    /// Descriptors currently open.
    public var openCount: Int { state.withLock { $0.entries.count } }
    /// Total `open` calls made (a cache-miss counter).
    public var openCalls: Int { state.withLock { $0.opens } }

    /// Runs `body` with an open read-write descriptor of `path`.
    ///
    /// Only `create: true` may create the file (`O_CREAT`): a plain use of a path whose
    /// file was deleted (a segment removed by retention, a topic deleted) fails with
    /// ENOENT instead of bringing back an empty ghost file. A failed `open` throws
    /// (`.resourceExhausted` for EMFILE/ENFILE, after closing idle descriptors and
    /// trying once more) and touches no file.
    public func withDescriptor<R>(_ path: String, create: Bool = false, _ body: (Int32) throws -> R) throws -> R {
        let fd = try acquire(path, create: create)
        defer { release(path, fd) }
        return try body(fd)
    }

    /// A hit is served under the lock; a miss opens the file outside it (an `open` may
    /// wait on the disk, and every partition shares this cache), then publishes it.
    private func acquire(_ path: String, create: Bool) throws -> Int32 {
        let (hit, epoch) = state.withLock { s -> (Int32?, UInt64) in
            s.clock += 1
            if var entry = s.entries[path] {
                entry.users += 1
                entry.lastUse = s.clock
                s.entries[path] = entry
                return (entry.fd, s.forgets)
            }
            return (nil, s.forgets)
        }
        if let hit { return hit }
        let flags = create ? O_RDWR | O_CREAT : O_RDWR
        var fd: Int32
        do {
            fd = try io.open(path, flags: flags, mode: 0o644)
        } catch let error as StorageError where error.code == .resourceExhausted {
            // Out of descriptors: give back the idle ones (other partitions reopen
            // on demand) and try once more; a second failure fails this request only.
            closeAll()
            fd = try io.open(path, flags: flags, mode: 0o644)
        }
        var duplicate: Int32?
        let result = state.withLock { s -> Int32 in
            s.opens += 1
            s.clock += 1
            if s.forgets != epoch {
                // A file was forgotten (deleted, renamed) while this one was being opened:
                // it may be this path's old file. Use it once, never cache it.
                s.retired[fd, default: 0] += 1
                return fd
            }
            if var entry = s.entries[path] {
                // Another caller opened the same file meanwhile: share theirs.
                entry.users += 1
                entry.lastUse = s.clock
                s.entries[path] = entry
                duplicate = fd
                return entry.fd
            }
            if s.entries.count >= capacity {
                evictOne(&s)
            }
            s.entries[path] = Entry(fd: fd, users: 1, lastUse: s.clock)
            return fd
        }
        if let duplicate { io.close(duplicate) }
        return result
    }

    private func release(_ path: String, _ fd: Int32) {
        state.withLock { s in
            guard var entry = s.entries[path], entry.fd == fd else {
                // Forgotten while in use: close once its last user is done.
                guard let users = s.retired[fd] else {
                    assertionFailure("release of a file that is not open: \(path)")
                    return
                }
                if users <= 1 {
                    s.retired.removeValue(forKey: fd)
                    io.close(fd)
                } else {
                    s.retired[fd] = users - 1
                }
                return
            }
            assert(entry.users > 0)
            entry.users -= 1
            s.entries[path] = entry
            if s.entries.count > capacity && entry.users == 0 {
                evictOne(&s)
            }
        }
    }

    private func evictOne(_ s: inout State) {
        var victim: (String, UInt64)?
        for (path, entry) in s.entries where entry.users == 0 {
            if victim == nil || entry.lastUse < victim!.1 { victim = (path, entry.lastUse) }
        }
        // When every descriptor is in use the cache overshoots briefly rather than block.
        guard let (path, _) = victim else { return }
        io.close(s.entries.removeValue(forKey: path)!.fd)
    }

    /// Drops `path` from the cache (before deleting or renaming it): closed now if
    /// unused, else by its last user. The next use of the path opens it afresh, so a
    /// new file created under the same name never sees the old descriptor.
    public func forget(_ path: String) {
        state.withLock { s in
            s.forgets += 1
            guard let entry = s.entries.removeValue(forKey: path) else { return }
            if entry.users == 0 {
                io.close(entry.fd)
            } else {
                s.retired[entry.fd] = entry.users
            }
        }
    }

    /// Closes every descriptor not in use.
    public func closeAll() {
        state.withLock { s in
            for (path, entry) in s.entries where entry.users == 0 {
                io.close(entry.fd)
                s.entries.removeValue(forKey: path)
            }
        }
    }
}

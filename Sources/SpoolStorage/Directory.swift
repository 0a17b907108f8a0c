#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Directory and whole-file helpers built on a `FileIO`: creating, listing, removing,
/// atomic file replacement. Directory changes (create, rename, unlink) are durable
/// only after an fsync of the directory itself; the helpers say which do it.
public enum Directory {
    public static func exists(_ path: String, io: FileIO) -> Bool {
        io.kind(of: path) == .directory
    }

    public static func fileExists(_ path: String, io: FileIO) -> Bool {
        io.kind(of: path) != nil
    }

    /// Creates `path` and its parents if missing (not synced: the caller fsyncs the parent).
    public static func create(_ path: String, io: FileIO) throws {
        if exists(path, io: io) { return }
        let parent = parentOf(path)
        if !parent.isEmpty && parent != path && !exists(parent, io: io) {
            try create(parent, io: io)
        }
        try io.makeDirectory(path)
    }

    public static func parentOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    /// Names in `path`, without "." and "..".
    public static func list(_ path: String, io: FileIO) throws -> [String] {
        try io.listDirectory(path)
    }

    /// fsyncs a directory so that entries created, renamed or removed in it are durable.
    public static func sync(_ path: String, io: FileIO) throws {
        try io.syncDirectory(path)
    }

    public static func removeFile(_ path: String, io: FileIO) throws {
        try io.removeFile(path)
    }

    /// Removes a directory tree (not synced). Frees space on a full disk: it writes nothing.
    public static func removeTree(_ path: String, io: FileIO) throws {
        guard exists(path, io: io) else {
            try io.removeFile(path)
            return
        }
        for name in try io.listDirectory(path) {
            let child = path + "/" + name
            if exists(child, io: io) { try removeTree(child, io: io) } else { try io.removeFile(child) }
        }
        try io.removeDirectory(path)
    }

    public static func rename(_ from: String, _ to: String, io: FileIO) throws {
        try io.rename(from, to: to)
    }

    /// Replaces `path` atomically with `bytes`: write a temporary file, fsync it,
    /// rename it over `path`, fsync the directory. A crash leaves either the old
    /// or the new contents, never a mix; on return the new contents are durable.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, io: FileIO) throws {
        let temp = path + ".tmp"
        let fd = try io.open(temp, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        do {
            try bytes.withUnsafeBytes { try io.pwrite(fd, $0, at: 0) }
            try io.fsync(fd)
            io.close(fd)
        } catch {
            io.close(fd)
            try? io.removeFile(temp)
            throw error
        }
        try io.rename(temp, to: path)
        try io.syncDirectory(parentOf(path))
    }

    /// Reads a whole (small) file, or nil if it does not exist.
    public static func readFile(_ path: String, io: FileIO) throws -> [UInt8]? {
        guard io.kind(of: path) == .file else { return nil }
        let fd: Int32
        do {
            fd = try io.open(path, flags: O_RDONLY, mode: 0)
        } catch let error as StorageError where error.errno == ENOENT {
            return nil
        }
        defer { io.close(fd) }
        let size = Int(try io.size(fd))
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { try io.pread(fd, into: $0, at: 0) }
        return Array(bytes.prefix(n))
    }
}

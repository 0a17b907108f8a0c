#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Directory helpers: listing, creating, removing, atomic file replacement.
/// Directory metadata changes (create, rename, unlink) are made durable with an
/// fsync of the directory itself.
public enum Directory {
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` and its parents if missing.
    public static func create(_ path: String) throws {
        if exists(path) { return }
        let parent = parentOf(path)
        if !parent.isEmpty && parent != path && !exists(parent) {
            try create(parent)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw ioError("mkdir \(path)")
        }
    }

    public static func parentOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    /// Names in `path`, without "." and "..".
    public static func list(_ path: String) throws -> [String] {
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

    /// fsyncs a directory so that entries created, renamed or removed in it are durable.
    public static func sync(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open directory \(path)") }
        defer { Glibc.close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw ioError("fsync directory \(path)") }
    }

    public static func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw ioError("unlink \(path)") }
    }

    /// Removes a directory tree.
    public static func removeTree(_ path: String) throws {
        guard exists(path) else {
            try removeFile(path)
            return
        }
        for name in try list(path) {
            let child = path + "/" + name
            if exists(child) { try removeTree(child) } else { try removeFile(child) }
        }
        if rmdir(path) != 0 && errno != ENOENT { throw ioError("rmdir \(path)") }
    }

    public static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw ioError("rename \(from) to \(to)") }
    }

    /// Replaces `path` atomically with `bytes`: write a temporary file, fsync it,
    /// rename it over `path`, fsync the directory. A crash leaves either the old
    /// or the new contents, never a mix.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, io: FileIO = PosixFileIO()) throws {
        let temp = path + ".tmp"
        let fd = try io.open(temp, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        do {
            try bytes.withUnsafeBytes { try io.pwrite(fd, $0, at: 0) }
            try io.fsync(fd)
            io.close(fd)
        } catch {
            io.close(fd)
            try? removeFile(temp)
            throw error
        }
        try rename(temp, path)
        try sync(parentOf(path))
    }

    /// Reads a whole (small) file, or nil if it does not exist.
    public static func readFile(_ path: String, io: FileIO = PosixFileIO()) throws -> [UInt8]? {
        guard fileExists(path) else { return nil }
        let fd = try io.open(path, flags: O_RDONLY, mode: 0)
        defer { io.close(fd) }
        let size = Int(try io.size(fd))
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { try io.pread(fd, into: $0, at: 0) }
        return Array(bytes.prefix(n))
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import SpoolStorage
import Synchronization

/// A small, fast, seeded random number generator (SplitMix64): the same seed gives the
/// same sequence on every machine, so a failing seed reproduces exactly.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An in-memory file system behind `FileIO` that knows what a power loss would keep.
///
/// Every file keeps its current bytes (what reads see: the page cache) apart from its
/// durable bytes (what the last successful fsync made stable) and the writes and
/// truncations since. Directory changes (create, mkdir, unlink, rmdir, rename) are
/// likewise pending until an fsync of a directory they touch makes them durable, in
/// order, as a journaling file system commits them.
///
/// `powerLoss(_:)` returns the disk as it could be after the power went out: the
/// durable state, plus a random part of what was pending — nothing, a prefix of the
/// pending writes whose last one is torn, or a random subset of them — and a random
/// prefix of the pending directory changes (a rename or a file creation not followed by
/// a directory fsync may be lost). `crash(atOperation:)` makes the disk fail every
/// operation from the n-th on, as if the machine stopped there.
///
/// Faults for the non-crash tests: a capacity (writes past it fail with ENOSPC, as much
/// as fits being written first; deleting frees space), failing opens/dups (EMFILE),
/// failing fsyncs (EIO), failing writes.
final class SimulatedDisk: FileIO, @unchecked Sendable {
    enum DataChange {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }

    struct Inode {
        var data: [UInt8] = []
        var durable: [UInt8] = []
        var pending: [DataChange] = []
    }

    enum Entry: Equatable {
        case file(Int)
        case directory
    }

    enum NameChange {
        case create(String, inode: Int)
        case mkdir(String)
        case unlink(String)
        case rmdir(String)
        case rename(String, String)
    }

    struct State {
        var inodes: [Int: Inode] = [:]
        var names: [String: Entry] = ["/": .directory]
        var durableNames: [String: Entry] = ["/": .directory]
        var pendingNames: [NameChange] = []
        var descriptors: [Int32: (inode: Int, path: String)] = [:]
        var locks: [Int: Int32] = [:]
        var nextDescriptor: Int32 = 100
        var nextInode = 1
        var operations = 0
        var crashAt: Int?
        var crashed = false
        var capacityBytes: Int?
        var failOpensWith: Int32?
        var openFailuresLeft = 0
        var failFsyncs = false
        var failWritesWith: Int32?
        var fsyncCount = 0
        var syncCalls: [String] = []
    }

    let state = Mutex(State())
    /// Runs before each fsync of a file or directory, outside the disk's lock, with the path.
    let beforeFsync = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Runs before each open and mkdir, outside the disk's lock, with the path.
    let beforeOpen = Mutex<(@Sendable (String) -> Void)?>(nil)

    init() {}

    // MARK: Test controls

    /// Fails every operation from the `n`-th (counting from now) on: the power is out.
    func crash(atOperation n: Int) { state.withLock { $0.crashAt = $0.operations + n } }
    var crashed: Bool { state.withLock { $0.crashed } }
    var operations: Int { state.withLock { $0.operations } }
    var fsyncCount: Int { state.withLock { $0.fsyncCount } }
    var usedBytes: Int { state.withLock { Self.used($0) } }

    /// Writes past `bytes` of data in all files fail with ENOSPC; nil: no limit.
    func setCapacity(_ bytes: Int?) { state.withLock { $0.capacityBytes = bytes } }
    /// Fills the disk: only `bytes` more may be written.
    func fill(leaving bytes: Int) { state.withLock { $0.capacityBytes = Self.used($0) + bytes } }
    /// The next `count` opens and dups fail with `errno`.
    func failOpens(_ count: Int, errno: Int32 = EMFILE) {
        state.withLock { $0.failOpensWith = errno; $0.openFailuresLeft = count }
    }
    func failFsyncs(_ on: Bool) { state.withLock { $0.failFsyncs = on } }
    func failWrites(with errno: Int32?) { state.withLock { $0.failWritesWith = errno } }
    func onFsync(_ hook: (@Sendable (String) -> Void)?) { beforeFsync.withLock { $0 = hook } }
    func onOpen(_ hook: (@Sendable (String) -> Void)?) { beforeOpen.withLock { $0 = hook } }

    /// Whether `path` would survive a power loss exactly as it is now: its name is durable
    /// and (for a file) no write or truncation since its last fsync is pending.
    func isDurable(_ path: String) -> Bool {
        state.withLock { s in
            guard let entry = s.names[path], s.durableNames[path] == entry else { return false }
            guard case .file(let id) = entry else { return true }
            return s.inodes[id]!.pending.isEmpty
        }
    }

    /// Current bytes of a file (what reads see), or nil.
    func contents(_ path: String) -> [UInt8]? {
        state.withLock { s in
            guard case .file(let id)? = s.names[path] else { return nil }
            return s.inodes[id]!.data
        }
    }

    /// Replaces a file's bytes, durably (for tests that damage files on purpose).
    func setContents(_ path: String, _ bytes: [UInt8]) {
        state.withLock { s in
            guard case .file(let id)? = s.names[path] else { fatalError("no file \(path)") }
            s.inodes[id]!.data = bytes
            s.inodes[id]!.durable = bytes
            s.inodes[id]!.pending = []
        }
    }

    /// Every path, sorted (files and directories).
    var paths: [String] { state.withLock { Array($0.names.keys) }.sorted() }

    /// The disk after a power loss at this moment, chosen by `random`.
    func powerLoss(_ random: inout SeededRandom) -> SimulatedDisk {
        let s = state.withLock { $0 }
        var names = s.durableNames
        let keptNames = Int.random(in: 0...s.pendingNames.count, using: &random)
        for change in s.pendingNames.prefix(keptNames) { Self.apply(change, to: &names) }
        var inodes: [Int: Inode] = [:]
        for entry in names.values {
            guard case .file(let id) = entry, inodes[id] == nil, let inode = s.inodes[id] else { continue }
            var bytes = inode.durable
            let pending = inode.pending
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                break // nothing pending reached the disk
            case 1:
                // A prefix reached the disk, the last write of it torn.
                let kept = Int.random(in: 0...pending.count, using: &random)
                for (i, change) in pending.prefix(kept).enumerated() {
                    if i == kept - 1, case .write(let offset, let all) = change, all.count > 1 {
                        let torn = Int.random(in: 1..<all.count, using: &random)
                        Self.apply(.write(offset: offset, bytes: Array(all.prefix(torn))), to: &bytes)
                    } else {
                        Self.apply(change, to: &bytes)
                    }
                }
            default:
                // Pages written back in any order: each change kept or not.
                for change in pending where Bool.random(using: &random) { Self.apply(change, to: &bytes) }
            }
            inodes[id] = Inode(data: bytes, durable: bytes, pending: [])
        }
        let disk = SimulatedDisk()
        disk.state.withLock { n in
            n.inodes = inodes
            n.names = names
            n.durableNames = names
            n.nextInode = s.nextInode
        }
        return disk
    }

    // MARK: Model

    /// Bytes in files that exist now (by name or open descriptor): a removed file's space
    /// is free at once, though its bytes are kept for a power loss that undoes the removal.
    private static func used(_ s: State) -> Int {
        var live = Set(s.descriptors.values.map(\.inode))
        for entry in s.names.values { if case .file(let id) = entry { live.insert(id) } }
        return live.reduce(0) { $0 + (s.inodes[$1]?.data.count ?? 0) }
    }

    static func parent(_ path: String) -> String { Directory.parentOf(path) }

    private static func apply(_ change: DataChange, to bytes: inout [UInt8]) {
        switch change {
        case .write(let offset, let new):
            if bytes.count < offset + new.count { bytes += [UInt8](repeating: 0, count: offset + new.count - bytes.count) }
            bytes.replaceSubrange(offset..<(offset + new.count), with: new)
        case .truncate(let size):
            if bytes.count > size { bytes.removeLast(bytes.count - size) } else { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
        }
    }

    private static func apply(_ change: NameChange, to names: inout [String: Entry]) {
        switch change {
        case .create(let path, let inode):
            if names[parent(path)] == .directory { names[path] = .file(inode) }
        case .mkdir(let path):
            if names[parent(path)] == .directory, names[path] == nil { names[path] = .directory }
        case .unlink(let path), .rmdir(let path):
            names.removeValue(forKey: path)
        case .rename(let from, let to):
            guard let entry = names.removeValue(forKey: from), names[parent(to)] == .directory else { return }
            if entry == .directory {
                for key in names.keys where key.hasPrefix(from + "/") {
                    names[to + key.dropFirst(from.count)] = names.removeValue(forKey: key)
                }
            }
            names[to] = entry
        }
    }

    private static func touches(_ change: NameChange, directory: String) -> Bool {
        switch change {
        case .create(let p, _), .mkdir(let p), .unlink(let p), .rmdir(let p): return parent(p) == directory
        case .rename(let a, let b): return parent(a) == directory || parent(b) == directory
        }
    }

    private func error(_ what: String, _ code: Int32) -> StorageError { ioError(what, code) }

    /// Counts an operation; throws once the power is out.
    private func step(_ s: inout State, _ what: String) throws {
        if s.crashed { throw error("\(what) (power is out)", EIO) }
        s.operations += 1
        if let at = s.crashAt, s.operations >= at {
            s.crashed = true
            throw error("\(what) (power lost)", EIO)
        }
    }

    private func change(_ s: inout State, _ change: NameChange) {
        Self.apply(change, to: &s.names)
        s.pendingNames.append(change)
        collect(&s)
    }

    /// Drops inodes that no name and no descriptor refers to (their space is free).
    private func collect(_ s: inout State) {
        var live = Set(s.descriptors.values.map(\.inode))
        for entry in s.names.values { if case .file(let id) = entry { live.insert(id) } }
        for entry in s.durableNames.values { if case .file(let id) = entry { live.insert(id) } }
        for change in s.pendingNames { if case .create(_, let id) = change { live.insert(id) } }
        for id in s.inodes.keys where !live.contains(id) { s.inodes.removeValue(forKey: id) }
    }

    private func inode(_ s: State, _ fd: Int32) throws -> Int {
        guard let d = s.descriptors[fd] else { throw error("bad descriptor \(fd)", EBADF) }
        return d.inode
    }

    // MARK: FileIO

    func open(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        if let hook = beforeOpen.withLock({ $0 }) { hook(path) }
        return try state.withLock { s in
            try step(&s, "open \(path)")
            if let code = s.failOpensWith, s.openFailuresLeft > 0 {
                s.openFailuresLeft -= 1
                throw error("open \(path)", code)
            }
            let id: Int
            switch s.names[path] {
            case .directory?:
                throw error("open \(path)", EISDIR)
            case .file(let existing)?:
                id = existing
            case nil:
                guard flags & O_CREAT != 0 else { throw error("open \(path)", ENOENT) }
                guard s.names[Self.parent(path)] == .directory else { throw error("open \(path)", ENOENT) }
                id = s.nextInode
                s.nextInode += 1
                s.inodes[id] = Inode()
                change(&s, .create(path, inode: id))
            }
            if flags & O_TRUNC != 0, !s.inodes[id]!.data.isEmpty {
                s.inodes[id]!.data = []
                s.inodes[id]!.pending.append(.truncate(0))
            }
            let fd = s.nextDescriptor
            s.nextDescriptor += 1
            s.descriptors[fd] = (id, path)
            return fd
        }
    }

    func close(_ fd: Int32) {
        state.withLock { s in
            guard let d = s.descriptors.removeValue(forKey: fd) else { return }
            if s.locks[d.inode] == fd { s.locks.removeValue(forKey: d.inode) }
            collect(&s)
        }
    }

    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try state.withLock { s in
            try step(&s, "write")
            let id = try inode(s, fd)
            if let code = s.failWritesWith { throw error("write", code) }
            var new = Array(bytes)
            var full = false
            if let capacity = s.capacityBytes {
                let growth = max(0, Int(offset) + new.count - s.inodes[id]!.data.count)
                let room = capacity - Self.used(s)
                if growth > room {
                    // As a full disk does: what fits is written, then ENOSPC.
                    let fits = max(0, new.count - (growth - max(0, room)))
                    new = Array(new.prefix(fits))
                    full = true
                }
            }
            if !new.isEmpty {
                Self.apply(.write(offset: Int(offset), bytes: new), to: &s.inodes[id]!.data)
                s.inodes[id]!.pending.append(.write(offset: Int(offset), bytes: new))
            }
            if full { throw error("write", ENOSPC) }
        }
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try state.withLock { s in
            try step(&s, "read")
            let data = s.inodes[try inode(s, fd)]!.data
            let start = min(Int(offset), data.count)
            let n = min(buffer.count, data.count - start)
            data.withUnsafeBytes { raw in
                if n > 0 { buffer.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: n) }
            }
            return n
        }
    }

    func fsync(_ fd: Int32) throws {
        let path = try state.withLock { s in
            guard let d = s.descriptors[fd] else { throw error("fsync", EBADF) }
            return d.path
        }
        if let hook = beforeFsync.withLock({ $0 }) { hook(path) }
        try state.withLock { s in
            try step(&s, "fsync \(path)")
            let id = try inode(s, fd)
            s.fsyncCount += 1
            if s.failFsyncs { throw error("fsync", EIO) }
            s.inodes[id]!.durable = s.inodes[id]!.data
            s.inodes[id]!.pending = []
        }
    }

    func truncate(_ fd: Int32, to size: Int64) throws {
        try state.withLock { s in
            try step(&s, "truncate")
            let id = try inode(s, fd)
            if let code = s.failWritesWith { throw error("truncate", code) }
            Self.apply(.truncate(Int(size)), to: &s.inodes[id]!.data)
            s.inodes[id]!.pending.append(.truncate(Int(size)))
        }
    }

    func size(_ fd: Int32) throws -> Int64 {
        try state.withLock { s in
            try step(&s, "fstat")
            return Int64(s.inodes[try inode(s, fd)]!.data.count)
        }
    }

    func duplicate(_ fd: Int32) throws -> Int32 {
        try state.withLock { s in
            try step(&s, "dup")
            if let code = s.failOpensWith, s.openFailuresLeft > 0 {
                s.openFailuresLeft -= 1
                throw error("dup", code)
            }
            guard let d = s.descriptors[fd] else { throw error("dup", EBADF) }
            let copy = s.nextDescriptor
            s.nextDescriptor += 1
            s.descriptors[copy] = d
            return copy
        }
    }

    func lockExclusive(_ fd: Int32) throws -> Bool {
        try state.withLock { s in
            try step(&s, "flock")
            let id = try inode(s, fd)
            if let holder = s.locks[id], holder != fd { return false }
            s.locks[id] = fd
            return true
        }
    }

    func makeDirectory(_ path: String) throws {
        if let hook = beforeOpen.withLock({ $0 }) { hook(path) }
        try state.withLock { s in
            try step(&s, "mkdir \(path)")
            switch s.names[path] {
            case .directory?: return
            case .file?: throw error("mkdir \(path)", EEXIST)
            case nil:
                guard s.names[Self.parent(path)] == .directory else { throw error("mkdir \(path)", ENOENT) }
                change(&s, .mkdir(path))
            }
        }
    }

    func removeFile(_ path: String) throws {
        try state.withLock { s in
            try step(&s, "unlink \(path)")
            switch s.names[path] {
            case nil: return
            case .directory?: throw error("unlink \(path)", EISDIR)
            case .file?: change(&s, .unlink(path))
            }
        }
    }

    func removeDirectory(_ path: String) throws {
        try state.withLock { s in
            try step(&s, "rmdir \(path)")
            switch s.names[path] {
            case nil: return
            case .file?: throw error("rmdir \(path)", ENOTDIR)
            case .directory?:
                if s.names.keys.contains(where: { $0.hasPrefix(path + "/") }) { throw error("rmdir \(path)", ENOTEMPTY) }
                change(&s, .rmdir(path))
            }
        }
    }

    func rename(_ from: String, to: String) throws {
        try state.withLock { s in
            try step(&s, "rename \(from)")
            guard s.names[from] != nil else { throw error("rename \(from)", ENOENT) }
            guard s.names[Self.parent(to)] == .directory else { throw error("rename to \(to)", ENOENT) }
            change(&s, .rename(from, to))
        }
    }

    func syncDirectory(_ path: String) throws {
        if let hook = beforeFsync.withLock({ $0 }) { hook(path) }
        try state.withLock { s in
            try step(&s, "fsync directory \(path)")
            guard s.names[path] == .directory else { throw error("open directory \(path)", ENOENT) }
            s.fsyncCount += 1
            s.syncCalls.append(path)
            if s.failFsyncs { throw error("fsync directory \(path)", EIO) }
            // A journal commits in order: everything up to the last change in this directory.
            guard let last = s.pendingNames.lastIndex(where: { Self.touches($0, directory: path) }) else { return }
            for change in s.pendingNames[...last] { Self.apply(change, to: &s.durableNames) }
            s.pendingNames.removeFirst(last + 1)
            collect(&s)
        }
    }

    func listDirectory(_ path: String) throws -> [String] {
        try state.withLock { s in
            try step(&s, "opendir \(path)")
            guard s.names[path] == .directory else { throw error("opendir \(path)", ENOENT) }
            let prefix = path == "/" ? "/" : path + "/"
            return s.names.keys.filter { $0.hasPrefix(prefix) && $0 != path && !$0.dropFirst(prefix.count).contains("/") }
                .map { String($0.dropFirst(prefix.count)) }
        }
    }

    func kind(of path: String) -> FileKind? {
        state.withLock { s in
            switch s.names[path] {
            case .directory?: return .directory
            case .file?: return .file
            case nil: return nil
            }
        }
    }
}

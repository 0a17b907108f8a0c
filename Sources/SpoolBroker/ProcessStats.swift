#if canImport(Glibc)
import Glibc
#endif

/// Readings of the broker process itself, for metrics and the admin API.
public enum ProcessStats {
    /// Descriptors open in this process (entries of /proc/self/fd), or -1 where unknown.
    public static func openDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)  // the descriptor opendir itself holds
    }

    /// The process's descriptor limit (RLIMIT_NOFILE soft limit).
    public static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        return limit.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// Free and total bytes of the file system holding `path`.
    public static func diskSpace(_ path: String) -> (freeBytes: Int64, totalBytes: Int64)? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return (Int64(s.f_bavail) * Int64(s.f_frsize), Int64(s.f_blocks) * Int64(s.f_frsize))
    }
}

/// A monotonic clock reading in nanoseconds.
@inline(__always)
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

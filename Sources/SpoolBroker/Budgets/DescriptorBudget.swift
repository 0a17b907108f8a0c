#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the process's descriptors are shared out: `RLIMIT_NOFILE` minus a reserve and
/// the storage's descriptor cache, split between connections (a socket and one span
/// descriptor each) and a shared pool of span descriptors that connections borrow from.
///
/// ```swift
/// let split = DescriptorBudget(limit: DescriptorBudget.processLimit(), reserve: 64, cache: 1024, maxConnections: nil)
/// split.maxConnections        // e.g. 4728 with a limit of 20000
/// ```
public struct DescriptorBudget: Sendable, Hashable {
    /// Descriptors a connection always holds: its socket and its guaranteed span descriptor.
    public static let descriptorsPerConnection = 2
    /// The smallest budget a broker starts with (below it, the limit is too low to serve).
    public static let availableMin = 16

    /// The process limit the budget was derived from.
    public let limit: Int
    /// Descriptors for connections and spans: `limit - reserve - cache`.
    public let available: Int
    /// Most connections at once.
    public let maxConnections: Int
    /// Span descriptors connections may borrow beyond their guaranteed one.
    public let sharedSpanDescriptors: Int

    public init(limit: Int, reserve: Int, cache: Int, maxConnections requested: Int?) {
        self.limit = limit
        available = max(Self.availableMin, limit - reserve - cache)
        let ceiling = max(1, available / Self.descriptorsPerConnection)
        maxConnections = max(1, min(requested ?? available / 4, ceiling))
        sharedSpanDescriptors = max(0, available - Self.descriptorsPerConnection * maxConnections)
        assert(maxConnections * Self.descriptorsPerConnection + sharedSpanDescriptors <= max(available, Self.descriptorsPerConnection))
    }

    /// The storage descriptor cache size to use under `limit`: the configured one, but never
    /// more than half of what the reserve leaves, so that connections keep the other half
    /// (with the common soft limit of 1024 and the default cache of 1024, the cache alone
    /// would otherwise take every descriptor).
    public static func cacheSize(_ requested: Int, limit: Int, reserve: Int) -> Int {
        max(2, min(requested, (limit - reserve) / 2))
    }

    /// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (as many servers do at
    /// start) and returns the new soft limit.
    @discardableResult
    public static func raiseProcessLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        if getrlimit(resource, &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, 1 << 20)
            _ = setrlimit(resource, &raised)
        }
        return processLimit()
    }

    /// The soft `RLIMIT_NOFILE` of this process (descriptors it may have open).
    public static func processLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        // RLIM_INFINITY is all ones; anything that large means "no practical limit".
        return Int(clamping: min(limit.rlim_cur, 1 << 20))
    }
}

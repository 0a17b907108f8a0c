#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Time and timers for the group coordinator. Injected, so that tests drive time
/// by hand and run without sleeping.
public protocol CoordinatorScheduler: Sendable {
    /// Wall-clock milliseconds (commit timestamps and every timeout use it).
    var nowMillis: Int64 { get }
    /// Runs `action` once, on any thread, `delayMillis` from now. Never runs it
    /// before returning (the coordinator may hold its lock while scheduling).
    func schedule(afterMillis delayMillis: Int64, _ action: @escaping @Sendable () -> Void)
}

/// The production scheduler: the real clock and a Dispatch queue.
public struct DispatchCoordinatorScheduler: CoordinatorScheduler {
    let queue: DispatchQueue

    public init(queue: DispatchQueue = DispatchQueue(label: "spool.group-coordinator.timers")) {
        self.queue = queue
    }

    public var nowMillis: Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func schedule(afterMillis delayMillis: Int64, _ action: @escaping @Sendable () -> Void) {
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(max(0, delayMillis))), execute: action)
    }
}

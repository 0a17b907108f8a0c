import Foundation
import SpoolEtcd
import SpoolTestSupport

/// A client for a test cluster, with short timeouts so that failures show quickly.
func makeClient(_ etcd: EtcdCluster, endpoints: String? = nil, requestTimeout: Duration = .seconds(10),
                attemptTimeout: Duration = .seconds(3)) throws -> EtcdClient {
    var configuration = try EtcdClientConfiguration(endpoints: endpoints ?? etcd.endpoints)
    configuration.requestTimeout = requestTimeout
    configuration.attemptTimeout = attemptTimeout
    return try EtcdClient(configuration: configuration)
}

extension Array where Element == UInt8 {
    init(text: String) { self = Array(text.utf8) }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// The next element of `stream` within `seconds`, or nil.
func next<T: Sendable>(_ stream: AsyncStream<T>, within seconds: Double) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Elapsed seconds of a ContinuousClock duration.
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// A flag one task sets and another polls.
final class Flag: @unchecked Sendable { // guarded by `lock`
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

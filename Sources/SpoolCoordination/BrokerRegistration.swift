import NIOConcurrencyHelpers
import SpoolEtcd

/// Keeps a broker registered: grants a lease, puts its `BrokerRecord` at
/// `/spool/<cluster-id>/brokers/<node-id>` under it, renews it every `keepAliveInterval`, and
/// reports in `events` when the registration is lost and when it is back.
///
/// Loss is reported when etcd says the lease is gone, or when no renewal has been acknowledged
/// for the lease's TTL counted from the moment the last acknowledged renewal was *sent*: etcd
/// started its TTL after it received that renewal, so the broker hears of the loss no later than
/// etcd expires the lease and the other brokers can act on it (a broker must stop acting as a
/// member, controller or leader on `.lost`). After a loss the broker registers again with a new
/// lease as soon as etcd answers; every registration has a new, larger `epoch`.
///
/// ```swift
/// let registration = BrokerRegistration(client: client, keys: keys, record: record)
/// let task = Task { await registration.run() }
/// for await event in registration.events { ... }
/// ```
public final class BrokerRegistration: Sendable {
    /// Timings, with the defaults of a production broker (Kafka: heartbeat 2 s, fenced after 9 s).
    public struct Configuration: Sendable {
        /// The lease's TTL, in seconds (etcd's minimum is 2 s with a 1 s election timeout).
        public var ttlSeconds: Int64 = 9
        /// Pause between renewals while they succeed.
        public var keepAliveInterval: Duration = .seconds(3)
        /// Pause before retrying a failed renewal or registration.
        public var retryInterval: Duration = .milliseconds(500)
        /// Revoke the lease when `run()` returns (graceful shutdown deletes the key at once).
        public var revokeOnExit = true

        public init() {}
    }

    /// One registration: the lease it lives under and its epoch (the etcd revision of the put
    /// that wrote the record; larger for every new registration of any broker).
    public struct Registration: Sendable, Hashable {
        public var leaseId: Int64
        public var epoch: Int64
    }

    /// Why a registration was lost.
    public enum LossReason: Sendable, Hashable {
        /// etcd answered that the lease does not exist.
        case leaseNotFound
        /// No renewal acknowledged within the TTL (etcd unreachable or without quorum).
        case keepAliveExpired
    }

    public enum Event: Sendable, Hashable {
        case registered(Registration)
        case lost(Registration, LossReason)
    }

    public let client: EtcdClient
    public let keys: ClusterKeys
    public let record: BrokerRecord
    public let configuration: Configuration
    /// Registration changes, oldest first (the newest 256 are kept if nobody reads).
    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let state = NIOLockedValueBox<Registration?>(nil)

    public init(client: EtcdClient, keys: ClusterKeys, record: BrokerRecord, configuration: Configuration = Configuration()) {
        self.client = client
        self.keys = keys
        self.record = record
        self.configuration = configuration
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(256))
    }

    /// The registration in force (nil while there is none).
    public var current: Registration? { state.withLockedValue { $0 } }

    /// Registers and keeps the registration alive until the task is cancelled; then revokes the
    /// lease (if `revokeOnExit`) and finishes `events`.
    public func run() async {
        let key = keys.broker(record.nodeId)
        var previousLease: Int64?
        defer { continuation.finish() }
        while !Task.isCancelled {
            // Register: a new lease, the record under it.
            let sentAt = ContinuousClock.now
            let registration: Registration
            let ttl: Duration
            do {
                let value = try JSONValue.encode(record)
                let lease = try await client.leaseGrant(ttlSeconds: configuration.ttlSeconds)
                let put = try await client.put(key, value, lease: lease.id)
                registration = Registration(leaseId: lease.id, epoch: put.revision)
                ttl = .seconds(lease.ttlSeconds)
            } catch {
                if Task.isCancelled { break }
                try? await Task.sleep(for: configuration.retryInterval)
                continue
            }
            if let previousLease, previousLease != registration.leaseId {
                // The old lease may be alive again (etcd extends leases when it elects a leader);
                // the key has moved to the new one, so revoking it deletes nothing.
                _ = try? await client.leaseRevoke(previousLease, timeout: .seconds(1))
            }
            previousLease = registration.leaseId
            state.withLockedValue { $0 = registration }
            continuation.yield(.registered(registration))

            // Renew until the lease is lost or the task is cancelled.
            var acknowledgedSentAt = sentAt
            var nextAt = sentAt + configuration.keepAliveInterval
            var lost: LossReason?
            while !Task.isCancelled {
                let expiresAt = acknowledgedSentAt + ttl
                do {
                    try await Task.sleep(until: min(nextAt, expiresAt), clock: .continuous)
                } catch { break }
                let now = ContinuousClock.now
                if now >= expiresAt {
                    lost = .keepAliveExpired
                    break
                }
                do {
                    // A slow renewal that lands before expiry still counts: wait up to the expiry.
                    _ = try await client.leaseKeepAliveOnce(registration.leaseId, timeout: expiresAt - now)
                    acknowledgedSentAt = now
                    nextAt = now + configuration.keepAliveInterval
                } catch let error as EtcdError where error.code == .leaseNotFound {
                    lost = .leaseNotFound
                    break
                } catch {
                    if Task.isCancelled { break }
                    nextAt = ContinuousClock.now + configuration.retryInterval
                }
            }
            if let lost {
                state.withLockedValue { $0 = nil }
                continuation.yield(.lost(registration, lost))
            }
        }
        if configuration.revokeOnExit, let lease = state.withLockedValue({ $0 })?.leaseId {
            // This task is cancelled (calls would fail at once): revoke from a task of its own.
            let client = self.client
            await Task { _ = try? await client.leaseRevoke(lease, timeout: .seconds(1)) }.value
        }
        state.withLockedValue { $0 = nil }
    }
}

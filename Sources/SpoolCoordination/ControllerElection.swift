import NIOConcurrencyHelpers
import SpoolEtcd

/// Elects one controller per cluster through etcd: every broker campaigns by creating
/// `/spool/<cluster-id>/controller` only if it is absent (a transaction comparing its create
/// revision with 0), attached to the broker's registration lease. The one whose transaction
/// succeeds is the controller; the others read who won and watch the key; when it is deleted
/// (the winner's lease expired or was revoked, or it resigned) they campaign again.
///
/// The controller epoch is the key's create revision: it grows with every new controller, so a
/// decision stamped with an older epoch can be told apart and refused.
///
/// A controller learns it was deposed from the key's deletion (`.deposed`), which it sees only
/// while etcd serves; it must also stop acting when its `BrokerRegistration` reports `.lost`,
/// which happens no later than etcd expiring the lease.
public final class ControllerElection: Sendable {
    /// Who is controller, and since which epoch.
    public struct Controller: Sendable, Hashable {
        public var nodeId: Int32
        public var epoch: Int64
    }

    public enum Event: Sendable, Hashable {
        /// This broker is the controller.
        case elected(Controller)
        /// Another broker is the controller.
        case following(Controller)
        /// This broker's controllership ended (its key was deleted).
        case deposed(Controller)
    }

    public let client: EtcdClient
    public let keys: ClusterKeys
    public let nodeId: Int32
    /// Pause before campaigning again after etcd failed to answer.
    public let retryInterval: Duration
    /// Election changes, oldest first (the newest 256 are kept if nobody reads).
    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let state = NIOLockedValueBox<Event?>(nil)

    public init(client: EtcdClient, keys: ClusterKeys, nodeId: Int32, retryInterval: Duration = .milliseconds(200)) {
        self.client = client
        self.keys = keys
        self.nodeId = nodeId
        self.retryInterval = retryInterval
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(256))
    }

    /// The last thing this broker learnt (nil before the first campaign answered).
    public var latest: Event? { state.withLockedValue { $0 } }

    /// Whether this broker is the controller as far as it knows.
    public var isController: Bool { if case .elected = latest { true } else { false } }

    /// Campaigns under `leaseId` until the task is cancelled (returns) or the lease is gone
    /// (throws `EtcdError(.leaseNotFound)`: register again, then call `run` with the new lease).
    public func run(leaseId: Int64) async throws {
        let key = keys.controller
        let value = try JSONValue.encode(ControllerRecord(nodeId: nodeId))
        while !Task.isCancelled {
            let holder: Controller
            let watchFrom: Int64
            do {
                let txn = try await client.txn(
                    compare: [.createRevision(key, .equal, 0)],
                    success: [.put(key, value, lease: leaseId)],
                    failure: [.range(.key(key))])
                if txn.succeeded {
                    holder = Controller(nodeId: nodeId, epoch: txn.revision)
                    publish(.elected(holder))
                } else if let kv = txn.firstRangeKeyValue {
                    let record = try JSONValue.decode(ControllerRecord.self, from: kv)
                    holder = Controller(nodeId: record.nodeId, epoch: kv.createRevision)
                    // Our own key from an earlier campaign whose answer was lost: still ours.
                    publish(kv.lease == leaseId ? .elected(holder) : .following(holder))
                } else {
                    continue // deleted between compare and read cannot happen in one txn; campaign again
                }
                watchFrom = txn.revision + 1
            } catch let error as EtcdError where error.code == .leaseNotFound {
                throw error
            } catch let error as EtcdError where error.code == .invalidResponse || error.code == .invalidArgument {
                throw error
            } catch {
                if Task.isCancelled { break }
                try? await Task.sleep(for: retryInterval)
                continue
            }
            // Wait for the key to go: a delete event, or a snapshot without it after compaction.
            var deleted = false
            do {
                updates: for try await update in EtcdResumingWatch(client: client, keys: .key(key), fromRevision: watchFrom) {
                    switch update {
                    case .events(let events, _):
                        if events.contains(where: { $0.kind == .delete }) { deleted = true; break updates }
                    case .resynced(let kvs, _):
                        if kvs.isEmpty || kvs[0].createRevision != holder.epoch { deleted = true; break updates }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                try? await Task.sleep(for: retryInterval)
            }
            if deleted, holder.nodeId == nodeId, isController { publish(.deposed(holder)) }
        }
    }

    /// Gives up controllership of `epoch` (deletes the key if it is still that epoch's).
    /// Returns whether it deleted it.
    @discardableResult
    public func resign(epoch: Int64) async throws -> Bool {
        let txn = try await client.txn(compare: [.createRevision(keys.controller, .equal, epoch)], success: [.delete(.key(keys.controller))])
        return txn.succeeded
    }

    /// Reads who is controller now (nil: nobody).
    public func currentController() async throws -> Controller? {
        guard let kv = try await client.get(keys.controller) else { return nil }
        let record = try JSONValue.decode(ControllerRecord.self, from: kv)
        return Controller(nodeId: record.nodeId, epoch: kv.createRevision)
    }

    private func publish(_ event: Event) {
        let changed = state.withLockedValue { current -> Bool in
            guard current != event else { return false }
            current = event
            return true
        }
        if changed { continuation.yield(event) }
    }

    deinit { continuation.finish() }
}

/// A watch that does not end when a member goes away: it replays from a revision, re-creates the
/// watch (on whichever endpoint answers) from the revision after the last event it delivered,
/// and when that revision was compacted it re-reads the keys and hands over a snapshot
/// (`.resynced`), then watches from the snapshot's revision. Nothing is skipped and nothing is
/// delivered twice: every change after `fromRevision` arrives as an event, or is folded into a
/// snapshot.
///
/// Pull-based: the next watch is made when the consumer asks for the next update; iteration
/// ends (`nil`) when the task is cancelled, and throws only on errors a retry cannot fix.
///
/// ```swift
/// for try await update in EtcdResumingWatch(client: client, keys: .prefix(keys.brokersPrefix), fromRevision: r + 1) {
///     switch update { case .events(let events, _): ...; case .resynced(let kvs, _): ... }
/// }
/// ```
public struct EtcdResumingWatch: AsyncSequence, Sendable {
    /// What the consumer sees next.
    public enum Update: Sendable, Hashable {
        /// Changes, in revision order; `revision` is the last change's.
        case events([EtcdWatchEvent], revision: Int64)
        /// The revisions to resume from were compacted: every key in range as of `revision`
        /// (replace what you hold with it).
        case resynced([EtcdKeyValue], revision: Int64)
    }

    public let client: EtcdClient
    public let keys: EtcdKeyRange
    public let fromRevision: Int64
    /// Pause before re-watching after the watch failed; doubles up to `retryIntervalMax`.
    public var retryInterval: Duration
    public var retryIntervalMax: Duration

    /// `fromRevision` 0 starts at the store's current revision.
    public init(client: EtcdClient, keys: EtcdKeyRange, fromRevision: Int64,
                retryInterval: Duration = .milliseconds(100), retryIntervalMax: Duration = .seconds(1)) {
        self.client = client
        self.keys = keys
        self.fromRevision = fromRevision
        self.retryInterval = retryInterval
        self.retryIntervalMax = retryIntervalMax
    }

    public func makeAsyncIterator() -> Iterator { Iterator(watch: self) }

    /// Walks the updates; see `EtcdResumingWatch`.
    public struct Iterator: AsyncIteratorProtocol {
        let watch: EtcdResumingWatch
        /// The first revision not yet delivered (0 until the first watch is made from "now").
        public private(set) var nextRevision: Int64
        private var current: EtcdWatch?
        private var iterator: EtcdWatch.AsyncIterator?
        private var pause: Duration

        init(watch: EtcdResumingWatch) {
            self.watch = watch
            self.nextRevision = watch.fromRevision
            self.pause = watch.retryInterval
        }

        public mutating func next() async throws -> Update? {
            while !Task.isCancelled {
                if iterator == nil {
                    do {
                        let created = try await watch.client.watch(watch.keys, fromRevision: nextRevision)
                        if nextRevision == 0 { nextRevision = created.createdRevision + 1 }
                        current = created
                        iterator = created.makeAsyncIterator()
                    } catch let error as EtcdError {
                        guard let update = try await recover(error) else { continue }
                        return update
                    }
                }
                do {
                    guard let response = try await iterator!.next() else {
                        drop()
                        continue
                    }
                    pause = watch.retryInterval
                    guard let last = response.events.last else {
                        nextRevision = Swift.max(nextRevision, response.revision + 1) // a progress notice
                        continue
                    }
                    nextRevision = Swift.max(nextRevision, last.kv.modRevision + 1)
                    return .events(response.events, revision: last.kv.modRevision)
                } catch let error as EtcdError {
                    drop()
                    guard let update = try await recover(error) else { continue }
                    return update
                }
            }
            drop()
            return nil
        }

        private mutating func drop() {
            current?.cancel()
            current = nil
            iterator = nil
        }

        /// A snapshot after compaction; nil after a pause when the error is transient.
        private mutating func recover(_ error: EtcdError) async throws -> Update? {
            switch error.code {
            case .compacted:
                while !Task.isCancelled {
                    do {
                        let snapshot = try await watch.client.range(watch.keys)
                        nextRevision = snapshot.revision + 1
                        return .resynced(snapshot.kvs, revision: snapshot.revision)
                    } catch let error as EtcdError where error.code == .unavailable || error.code == .timeout {
                        await sleepThenBackOff()
                    }
                }
                return nil
            case .unavailable, .timeout, .cancelled:
                await sleepThenBackOff()
                return nil
            default:
                throw error
            }
        }

        private mutating func sleepThenBackOff() async {
            try? await Task.sleep(for: pause)
            pause = Swift.min(pause * 2, watch.retryIntervalMax)
        }
    }
}

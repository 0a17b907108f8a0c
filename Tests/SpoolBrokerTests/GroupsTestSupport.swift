import Foundation
@testable import SpoolBroker
import SpoolRecords
import SpoolStorage
import Synchronization

/// A clock that moves only when a test says so; due timers run on the test's thread,
/// in time order, inside `advance`.
final class ManualScheduler: CoordinatorScheduler {
    struct Timer {
        var at: Int64
        var sequence: Int
        var action: @Sendable () -> Void
    }

    struct State {
        var now: Int64
        var sequence = 0
        var timers: [Timer] = []
    }

    let state: Mutex<State>

    init(nowMillis: Int64 = 1_700_000_000_000) {
        state = Mutex(State(now: nowMillis))
    }

    var nowMillis: Int64 { state.withLock { $0.now } }

    func schedule(afterMillis delayMillis: Int64, _ action: @escaping @Sendable () -> Void) {
        state.withLock { s in
            s.sequence += 1
            s.timers.append(Timer(at: s.now + max(0, delayMillis), sequence: s.sequence, action: action))
        }
    }

    /// Moves the clock forward by `millis`, running every timer that falls due on the way.
    func advance(by millis: Int64) {
        let target = nowMillis + millis
        while true {
            let due: Timer? = state.withLock { s in
                let ready = s.timers.indices.filter { s.timers[$0].at <= target }
                guard let i = ready.min(by: { (s.timers[$0].at, s.timers[$0].sequence) < (s.timers[$1].at, s.timers[$1].sequence) }) else {
                    return nil
                }
                let timer = s.timers.remove(at: i)
                s.now = max(s.now, timer.at)
                return timer
            }
            guard let due else { break }
            due.action()
        }
        state.withLock { $0.now = target }
    }
}

/// Where a callback-style call's answer lands.
final class Outcome<T: Sendable>: Sendable {
    let slot = Mutex<Result<T, GroupCoordinatorError>?>(nil)

    func set(_ result: Result<T, GroupCoordinatorError>) {
        slot.withLock { s in
            precondition(s == nil, "answered twice")
            s = result
        }
    }

    var result: Result<T, GroupCoordinatorError>? { slot.withLock { $0 } }
    var isPending: Bool { result == nil }
    var value: T? { try? result?.get() }
    var errorCode: GroupCoordinatorError.Code? {
        if case .failure(let e) = result { return e.code }
        return nil
    }
}

/// A coordinator over a fresh offset store, with a manual clock and no retention timer.
final class CoordinatorHarness {
    let directory = NSTemporaryDirectory() + "spool-groups-" + UUID().uuidString
    let scheduler = ManualScheduler()
    let store: OffsetStore
    let coordinator: GroupCoordinator
    static let partitions: Set<TopicPartition> = Set((0..<4).map { TopicPartition("events", $0) })

    init(configure: (inout GroupCoordinatorConfig) -> Void = { _ in }) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try OffsetStore(dataDirectory: directory)
        var config = GroupCoordinatorConfig()
        config.offsetsRetentionCheckIntervalMillis = 0
        configure(&config)
        coordinator = GroupCoordinator(config: config, offsets: store, scheduler: scheduler, partitionExists: { Self.partitions.contains($0) })
    }

    deinit {
        coordinator.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func request(
        _ group: String = "g", memberId: String = "", instance: String? = nil, client: String = "c",
        protocols: [(String, String)] = [("range", "events")], sessionMillis: Int32 = 10_000, rebalanceMillis: Int32 = 30_000,
        requireKnownMemberId: Bool = true
    ) -> GroupCoordinator.JoinRequest {
        GroupCoordinator.JoinRequest(
            groupId: group, memberId: memberId, groupInstanceId: instance, clientId: client, clientHost: "/127.0.0.1",
            sessionTimeoutMillis: sessionMillis, rebalanceTimeoutMillis: rebalanceMillis,
            protocols: protocols.map { .init(name: $0.0, metadata: Array($0.1.utf8)) }, requireKnownMemberId: requireKnownMemberId)
    }

    @discardableResult
    func join(_ request: GroupCoordinator.JoinRequest) -> Outcome<GroupCoordinator.JoinResult> {
        let outcome = Outcome<GroupCoordinator.JoinResult>()
        coordinator.join(request) { outcome.set($0) }
        return outcome
    }

    /// A new dynamic member: the MEMBER_ID_REQUIRED round trip, then the held JoinGroup.
    func joinNew(_ group: String = "g", client: String = "c", protocols: [(String, String)] = [("range", "events")],
                 sessionMillis: Int32 = 10_000, rebalanceMillis: Int32 = 30_000) -> (memberId: String, outcome: Outcome<GroupCoordinator.JoinResult>) {
        let first = join(Self.request(group, client: client, protocols: protocols, sessionMillis: sessionMillis, rebalanceMillis: rebalanceMillis))
        guard case .failure(let error) = first.result, error.code == .memberIdRequired, let id = error.memberId else {
            fatalError("expected MEMBER_ID_REQUIRED, got \(String(describing: first.result))")
        }
        return (id, join(Self.request(group, memberId: id, client: client, protocols: protocols, sessionMillis: sessionMillis, rebalanceMillis: rebalanceMillis)))
    }

    func rejoin(_ memberId: String, group: String = "g", instance: String? = nil, protocols: [(String, String)] = [("range", "events")]) -> Outcome<GroupCoordinator.JoinResult> {
        join(Self.request(group, memberId: memberId, instance: instance, protocols: protocols))
    }

    @discardableResult
    func sync(_ memberId: String, generation: Int32, group: String = "g", instance: String? = nil,
              assignments: [String: String] = [:]) -> Outcome<GroupCoordinator.SyncResult> {
        let outcome = Outcome<GroupCoordinator.SyncResult>()
        coordinator.sync(GroupCoordinator.SyncRequest(
            groupId: group, generationId: generation, memberId: memberId, groupInstanceId: instance,
            assignments: assignments.mapValues { Array($0.utf8) })) { outcome.set($0) }
        return outcome
    }

    /// nil when the heartbeat was accepted.
    func heartbeat(_ memberId: String, generation: Int32, group: String = "g", instance: String? = nil) -> GroupCoordinatorError.Code? {
        do {
            try coordinator.heartbeat(groupId: group, memberId: memberId, groupInstanceId: instance, generationId: generation)
            return nil
        } catch {
            return error.code
        }
    }

    func describe(_ group: String = "g") throws -> GroupCoordinator.GroupDescription {
        try coordinator.describeGroup(group)
    }

    /// Two members through a whole round: joined (one generation), leader assigned, both synced.
    func stableGroupOfTwo() throws -> (leader: String, follower: String, generation: Int32) {
        let a = joinNew(client: "a")
        let b = joinNew(client: "b")
        scheduler.advance(by: coordinator.config.initialRebalanceDelayMillis)
        guard let ja = a.outcome.value, let jb = b.outcome.value else { fatalError("join did not complete") }
        let leader = ja.isLeader ? ja : jb
        let follower = ja.isLeader ? jb : ja
        let followerSync = sync(follower.memberId, generation: follower.generationId)
        sync(leader.memberId, generation: leader.generationId,
             assignments: [leader.memberId: "events-0,events-1", follower.memberId: "events-2,events-3"])
        guard followerSync.value != nil else { fatalError("follower sync did not complete") }
        return (leader.memberId, follower.memberId, leader.generationId)
    }
}

extension GroupCoordinator.SyncResult {
    var text: String { String(decoding: assignment, as: UTF8.self) }
}

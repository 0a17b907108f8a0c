import Foundation
import NIOConcurrencyHelpers
@testable import SpoolClient
import SpoolProtocol
import SpoolTestSupport
import Testing

/// How group calls find their coordinator (`CoordinatorRetry`, `BrokerRouter.groupCall`):
/// the retry policy alone, then against a real single broker whose answers a test body
/// turns into NOT_COORDINATOR / LOAD_IN_PROGRESS, and a remembered coordinator that is dead.
@Suite struct CoordinatorRoutingTests {
    @Test func policyFindsAgainWaitsOrStops() {
        #expect(CoordinatorRetry.after(Spool_V1_GroupError.notCoordinator) == .findAgain)
        #expect(CoordinatorRetry.after(Spool_V1_GroupError.coordinatorLoadInProgress) == .wait)
        #expect(CoordinatorRetry.after(Spool_V1_GroupError.coordinatorNotAvailable) == .wait)
        for answer in [Spool_V1_GroupError.none, .unknownMemberID, .rebalanceInProgress, .illegalGeneration, .fencedInstanceID] {
            #expect(CoordinatorRetry.after(answer) == .done, "\(answer)")
        }
        #expect(CoordinatorRetry.after(SpoolStatusError(.notLeaderOrFollower, "")) == .findAgain)
        #expect(CoordinatorRetry.after(SpoolStatusError(.unavailable, "")) == .wait)
        #expect(CoordinatorRetry.after(SpoolStatusError(.permissionDenied, "")) == .done)
        #expect(CoordinatorRetry.after(SpoolClientError(.connectionLost, "")) == .findAgain)
        #expect(CoordinatorRetry.after(SpoolClientError(.connectionRefused, "")) == .findAgain)
        #expect(CoordinatorRetry.after(SpoolClientError(.deadlineExceeded, "")) == .done)
        #expect((0..<8).map(CoordinatorRetry.pauseMillis) == [50, 100, 200, 400, 800, 1_000, 1_000, 1_000])
    }

    @Test func groupCallRetriesNotCoordinatorAndLoadingThenGivesUpWithinItsWindow() async throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let router = try await BrokerRouter.connect([ConnectionConfig(host: "127.0.0.1", port: broker.port)])
        defer { Task { await router.close() } }

        // A single broker coordinates every group, itself.
        let found = try await router.findCoordinator(of: "g")
        #expect(found.error == .none && found.nodeID == 0 && found.address == "127.0.0.1:\(broker.port)", "\(found)")
        #expect(try await router.findCoordinator(of: "").error == .invalidGroupID)

        // Two NOT_COORDINATOR answers, one thrown NOT_LEADER_OR_FOLLOWER, one LOAD_IN_PROGRESS, then the real answer.
        let script: [Spool_V1_GroupError?] = [.notCoordinator, .notCoordinator, nil, .coordinatorLoadInProgress]
        let attempts = NIOLockedValueBox(0)
        let answer: Spool_V1_HeartbeatResponse = try await router.groupCall("g", groupError: { $0.error }) { connection in
            let n = attempts.withLockedValue { n in defer { n += 1 }; return n }
            var request = Spool_V1_HeartbeatRequest()
            request.group = "g"
            request.memberID = "nobody"
            var response: Spool_V1_HeartbeatResponse = try await connection.call(.heartbeat, request)
            guard n < script.count else { return response }
            guard let scripted = script[n] else { throw SpoolStatusError(.notLeaderOrFollower, "scripted") }
            response.error = scripted
            return response
        }
        #expect(attempts.withLockedValue { $0 } == 5)
        #expect(answer.error == .unknownMemberID, "the broker's own answer: \(answer)")

        // Always loading: UNAVAILABLE once the window is spent, not before, not much after.
        let started = ContinuousClock.now
        await #expect(throws: SpoolStatusError.self) {
            let _: Spool_V1_HeartbeatResponse = try await router.groupCall("g", retryWithinMillis: 600, groupError: { $0.error }) { _ in
                var r = Spool_V1_HeartbeatResponse()
                r.error = .coordinatorLoadInProgress
                return r
            }
        }
        let spent = ContinuousClock.now - started
        #expect(spent >= .milliseconds(300) && spent < .seconds(2), "gave up after \(spent)")

        // Anything else is the answer at once.
        let once = NIOLockedValueBox(0)
        await #expect(throws: SpoolStatusError.self) {
            let _: Spool_V1_HeartbeatResponse = try await router.groupCall("g") { _ in
                once.withLockedValue { $0 += 1 }
                throw SpoolStatusError(.permissionDenied, "no")
            }
        }
        #expect(once.withLockedValue { $0 } == 1)
    }

    @Test func aDeadRememberedCoordinatorIsLookedUpAgain() async throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let router = try await BrokerRouter.connect([ConnectionConfig(host: "127.0.0.1", port: broker.port)])
        defer { Task { await router.close() } }
        let live = "127.0.0.1:\(broker.port)"
        // As if in a cluster whose coordinator of g was a broker that is gone now.
        let dead = "127.0.0.1:\(freeLoopbackPort())"
        router.state.withLockedValue { s in
            s.metadata = ClusterMetadata(answeredBy: 0, clustered: true, brokers: [0: live, 9: dead])
            s.coordinators["g"] = dead
        }
        let used = NIOLockedValueBox<[String]>([])
        let started = ContinuousClock.now
        let offsets: Spool_V1_FetchOffsetsResponse = try await router.groupCall("g") { connection in
            used.withLockedValue { $0.append(connection.config.address) }
            var request = Spool_V1_FetchOffsetsRequest()
            request.group = "g"
            return try await connection.call(.fetchOffsets, request)
        }
        #expect(offsets.offsets.isEmpty)
        #expect(used.withLockedValue { $0 } == [live], "calls went to \(used.withLockedValue { $0 })")
        // Given up on the dead one after its connect bound (3 s), not after the call's 30 s deadline (slack for a loaded machine).
        let spent = ContinuousClock.now - started
        #expect(spent < .seconds(BrokerRouter.coordinatorConnectMillisMax / 1000 + 12), "looked up again after \(spent)")
    }
}

import SpoolProtocol

// Group calls in a cluster: each group has one coordinator (the leader of its partition of
// `__consumer_offsets`), found with FindCoordinator (method 27) and reached over the router's
// per-broker connections; calls elsewhere are refused with NOT_COORDINATOR.
extension BrokerRouter {
    /// Bound on one FindCoordinator attempt at one broker (the next broker is asked after it).
    public static let findCoordinatorAttemptMillisMax = 5_000
    /// Bound on bringing a coordinator's connection up before a group call: a broker that
    /// does not answer by then is looked up again rather than waited for (it may have died).
    public static let coordinatorConnectMillisMax = 3_000
    /// Most groups whose coordinator the router remembers (beyond it, all are forgotten).
    public static let coordinatorsCachedMax = 1_024

    /// Asks FindCoordinator about `group`: the bootstrap broker, or, when it cannot be
    /// reached, the other brokers known, in turn. The answer may carry a `GroupError`
    /// (COORDINATOR_NOT_AVAILABLE while no broker coordinates the group).
    public func findCoordinator(of group: String) async throws -> Spool_V1_FindCoordinatorResponse {
        var request = Spool_V1_FindCoordinatorRequest()
        request.group = group
        var last: Error = SpoolClientError(.connectionRefused, "no broker to ask for the coordinator of group \(group)")
        for connection in candidates() {
            do {
                let timeout = min(connection.config.requestTimeoutMillis, Self.findCoordinatorAttemptMillisMax)
                return try await connection.call(.findCoordinator, request, timeoutMillis: timeout)
            } catch {
                guard CoordinatorRetry.after(error) == .findAgain || (error as? SpoolClientError)?.code == .deadlineExceeded else { throw error }
                last = error
            }
        }
        throw last
    }

    /// The connection to `group`'s coordinator: the one FindCoordinator last named, or asked
    /// now. A single broker (or one older than FindCoordinator) coordinates every group on
    /// `bootstrap`. Throws UNAVAILABLE while no broker coordinates the group.
    public func coordinator(of group: String) async throws -> SpoolConnection {
        if metadata == nil { _ = try? await refresh() }
        let known = state.withLockedValue { s -> SpoolConnection? in
            guard let m = s.metadata, m.clustered else { return bootstrap }
            return s.coordinators[group].map { Self.connection(to: $0, in: &s, template: bootstrap) }
        }
        if let known { return known }
        let response: Spool_V1_FindCoordinatorResponse
        do {
            response = try await findCoordinator(of: group)
        } catch let error as SpoolStatusError where error.code == .unimplemented {
            return bootstrap
        }
        switch response.error {
        case .none:
            break
        case .coordinatorNotAvailable, .coordinatorLoadInProgress, .notCoordinator:
            throw SpoolStatusError(.unavailable, "no broker coordinates group \(group) now: \(response.message)")
        default:
            throw SpoolStatusError(.invalidArgument, "FindCoordinator for group \(group): \(response.error): \(response.message)")
        }
        return state.withLockedValue { s in
            if s.coordinators.count >= Self.coordinatorsCachedMax { s.coordinators.removeAll() }
            s.coordinators[group] = response.address
            return Self.connection(to: response.address, in: &s, template: bootstrap)
        }
    }

    /// Forgets where `group`'s coordinator is: the next group call asks FindCoordinator.
    public func forgetCoordinator(of group: String) {
        state.withLockedValue { _ = $0.coordinators.removeValue(forKey: group) }
    }

    /// Makes a group call at `group`'s coordinator, as Kafka's clients do (`CoordinatorRetry`):
    /// after NOT_COORDINATOR (in the answer's `groupError`) or NOT_LEADER_OR_FOLLOWER, or when
    /// the coordinator's connection breaks or cannot be made, finds the coordinator again and
    /// retries; after COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE / UNAVAILABLE
    /// retries where it is. Pauses 50 ms doubling to 1 s between attempts, for at most
    /// `retryWithinMillis` (default: the bootstrap's request timeout), then throws UNAVAILABLE.
    /// Each attempt's own deadline is `body`'s.
    public func groupCall<R>(
        _ group: String, retryWithinMillis: Int? = nil, groupError: (R) -> Spool_V1_GroupError = { _ in .none },
        _ body: (SpoolConnection) async throws -> R
    ) async throws -> R {
        let window = retryWithinMillis ?? bootstrap.config.requestTimeoutMillis
        let deadline = ContinuousClock.now + .milliseconds(window)
        var retries = 0
        while true {
            let next: CoordinatorRetry
            let why: String
            do {
                let connection = try await coordinator(of: group)
                if !connection.isConnected { try await connection.reconnect(timeoutMillis: Self.coordinatorConnectMillisMax) }
                let answer = try await body(connection)
                let error = groupError(answer)
                next = CoordinatorRetry.after(error)
                if next == .done { return answer }
                why = "\(error)"
            } catch {
                next = CoordinatorRetry.after(error)
                if next == .done { throw error }
                why = "\(error)"
            }
            if next == .findAgain {
                forgetCoordinator(of: group)
                requestRefresh()
            }
            let pause = CoordinatorRetry.pauseMillis(retry: retries)
            retries += 1
            guard ContinuousClock.now + .milliseconds(pause) < deadline else {
                throw SpoolStatusError(.unavailable, "group \(group): no coordinator answered within \(window) ms (last: \(why))")
            }
            try await Task.sleep(for: .milliseconds(pause))
        }
    }
}

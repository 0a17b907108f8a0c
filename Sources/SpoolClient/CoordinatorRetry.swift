import SpoolProtocol

/// What a group call does after one attempt at the group's coordinator, as Kafka's clients
/// decide it: the broker is not (or no longer) the coordinator, or its connection broke —
/// find the coordinator again; the coordinator is loading the group's offsets or there is
/// none now — wait briefly and retry; anything else is the call's answer (or failure).
/// Pure, so that the policy is tested apart from any broker (`BrokerRouter.groupCall` applies it).
public enum CoordinatorRetry: Equatable, Sendable {
    /// The answer stands: return it (or throw the error).
    case done
    /// Ask FindCoordinator again (after the pause), then retry.
    case findAgain
    /// Retry at the same coordinator after the pause.
    case wait

    /// First pause before a retry (Kafka: `retry.backoff.ms` is 100; shorter here: a load is quick).
    public static let backoffMillis = 50
    /// Longest pause between retries (Kafka: `retry.backoff.max.ms`, 1 s).
    public static let backoffMaxMillis = 1_000

    /// After an answer whose `GroupError` is `error`.
    public static func after(_ error: Spool_V1_GroupError) -> CoordinatorRetry {
        switch error {
        case .notCoordinator: .findAgain
        case .coordinatorLoadInProgress, .coordinatorNotAvailable: .wait
        default: .done
        }
    }

    /// After a call that threw `error`: NOT_LEADER_OR_FOLLOWER is a STATUS call's
    /// NOT_COORDINATOR, UNAVAILABLE its COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE;
    /// a connection that broke or cannot be made means the coordinator may have moved. A
    /// call that ran out of time is not retried (it may be a long JoinGroup: its deadline stands).
    public static func after(_ error: Error) -> CoordinatorRetry {
        if let e = error as? SpoolStatusError {
            switch e.code {
            case .notLeaderOrFollower: return .findAgain
            case .unavailable, .resourceExhausted: return .wait
            default: return .done
            }
        }
        if let e = error as? SpoolClientError {
            switch e.code {
            case .connectionLost, .connectionRefused, .connectTimeout, .handshakeTimeout, .unknownHost: return .findAgain
            case .tooManyCallsInFlight: return .wait
            default: return .done
            }
        }
        return .done
    }

    /// The pause before retry number `retry` (0 first): 50 ms doubling to 1 s.
    public static func pauseMillis(retry: Int) -> Int {
        min(backoffMaxMillis, backoffMillis << min(max(retry, 0), 10))
    }
}

import Foundation
import SpoolProtocol
import SpoolSecurity

/// The authentication state of one native connection (FRAMING.md, "Authentication"): the
/// SCRAM exchange of the Authenticate calls, run by the same `SaslServerSession` as the
/// Kafka listener's, and the gate that refuses other calls before authentication when the
/// listener requires it. Confined to the connection's event loop.
struct NativeAuthentication {
    /// What one Authenticate call came to.
    enum Outcome {
        /// Answer with this response and wait for the next step.
        case answer(Spool_V1_AuthenticateResponse)
        /// Authenticated as `principal`: answer, and the connection runs as it from now on.
        case authenticated(Spool_V1_AuthenticateResponse, Principal, mechanism: String)
        /// Refused: end the call with this status and close the connection. `user` is whom
        /// the client claimed to be (for the log), when it got that far.
        case refused(SpoolStatusError, user: String?, mechanism: String)
    }

    private enum State {
        case initial
        case exchanging(SaslServerSession)
        case done
    }

    let config: NativeSecurityConfig
    private var state: State = .initial
    /// The principal proved on this connection (SCRAM or a client certificate); nil: anonymous.
    private(set) var principal: Principal?

    init(config: NativeSecurityConfig) {
        self.config = config
    }

    /// A verified client certificate names the connection's principal (mutual TLS); a later
    /// SCRAM authentication overrides it.
    mutating func certificateVerified(_ who: Principal) {
        if principal == nil { principal = who }
    }

    /// Nil when call `method` may run now; else the UNAUTHENTICATED status to end it with
    /// (the connection is then closed, as Kafka's ILLEGAL_SASL_STATE closes it).
    func refusal(_ method: SpoolMethod) -> SpoolStatusError? {
        guard config.authentication == .required, principal == nil, method != .handshake, method != .authenticate else { return nil }
        if case .exchanging = state {
            return SpoolStatusError(.unauthenticated, "\(method) sent during authentication: finish the Authenticate exchange first")
        }
        return SpoolStatusError(.unauthenticated,
            "this listener requires authentication (SCRAM-SHA-256/512 through Authenticate, or a client certificate) before \(method)")
    }

    /// One Authenticate call.
    mutating func step(_ request: Spool_V1_AuthenticateRequest) -> Outcome {
        let mechanism = request.mechanism
        guard config.authentication != .none, let store = config.credentials else {
            return .refused(SpoolStatusError(.failedPrecondition, "authentication is not enabled on this listener (--native-auth none)"),
                            user: nil, mechanism: mechanism)
        }
        var session: SaslServerSession
        switch state {
        case .initial:
            guard let started = SaslServerSession(mechanism: mechanism, store: store, enabled: config.mechanisms) else {
                state = .done
                return .refused(SpoolStatusError(.unauthenticated,
                    "unsupported SASL mechanism '\(mechanism.prefix(64))'; this listener offers \(config.mechanisms.joined(separator: ", "))"),
                    user: nil, mechanism: mechanism)
            }
            session = started
        case .exchanging(let current):
            guard current.mechanism == mechanism else {
                state = .done
                return .refused(SpoolStatusError(.unauthenticated, "the mechanism changed during authentication"), user: current.user, mechanism: mechanism)
            }
            session = current
        case .done:
            return .refused(SpoolStatusError(.failedPrecondition, "this connection already authenticated (or failed to); open a new one"),
                            user: nil, mechanism: mechanism)
        }
        var response = Spool_V1_AuthenticateResponse()
        switch session.step(Array(request.token)) {
        case .challenge(let bytes):
            state = .exchanging(session)
            response.token = .init(bytes)
            return .answer(response)
        case .success(let bytes, let who):
            state = .done
            principal = who
            response.token = .init(bytes)
            response.complete = true
            response.principal = who.description
            return .authenticated(response, who, mechanism: mechanism)
        case .failure(let error):
            state = .done
            return .refused(SpoolStatusError(.unauthenticated, error.message), user: session.user, mechanism: mechanism)
        }
    }
}

import Dispatch
import NIOCore
import SpoolSecurity

/// The SASL state of one connection on a SASL listener (SECURITY.md): before authentication
/// only ApiVersions, SaslHandshake and SaslAuthenticate are let through; anything else is
/// answered ILLEGAL_SASL_STATE and the connection closed. SaslHandshake v0 is followed by raw
/// length-prefixed tokens (no Kafka header), v1 by SaslAuthenticate requests. Wrong
/// credentials: SASL_AUTHENTICATION_FAILED with a message, then close. With a session
/// lifetime (`connections.max.reauth.ms`), a request after it ran out closes the connection
/// unless the client re-authenticated (SaslHandshake + SaslAuthenticate again) in time.
///
/// Confined to the connection's event loop.
final class KafkaSaslGate {
    enum Decision {
        /// An ordinary request from an authenticated client (or ApiVersions): dispatch it.
        case pass
        /// Answered here.
        case answer(KafkaReply)
    }

    private enum State {
        case initial
        /// SaslHandshake v1 chose a mechanism; SaslAuthenticate requests follow.
        case handshaken(SaslServerSession)
        /// SaslHandshake v0 chose a mechanism; raw tokens follow.
        case rawTokens(SaslServerSession)
        case authenticated
    }

    private let config: KafkaListenerConfig
    private let store: CredentialStore
    /// Told of each authentication: on success the principal (`User:name`), on failure the
    /// user the client claimed (empty when none), with the mechanism and why.
    private let events: (_ success: Bool, _ principal: String, _ mechanism: String, _ detail: String) -> Void
    private var state: State = .initial
    /// Authenticated at least once (a re-authentication keeps the connection usable meanwhile).
    private(set) var principal: Principal?
    /// When the session runs out (uptime nanoseconds), with a lifetime.
    private var expiry: UInt64?

    init(config: KafkaListenerConfig, store: CredentialStore,
         events: @escaping (_ success: Bool, _ principal: String, _ mechanism: String, _ detail: String) -> Void) {
        self.config = config
        self.store = store
        self.events = events
    }

    func admit(_ frame: ByteBuffer) -> Decision {
        if case .rawTokens(var session) = state {
            return .answer(rawToken(frame, &session))
        }
        var reader = KafkaReader(frame)
        guard let header = try? KafkaRequestHeader.decode(from: &reader) else { return .pass }
        switch header.api {
        case .apiVersions:
            return .pass
        case .saslHandshake where header.isSupported:
            return .answer(handshake(header, &reader))
        case .saslAuthenticate where header.isSupported:
            return .answer(authenticate(header, &reader))
        default:
            if case .authenticated = state {
                if let expiry, DispatchTime.now().uptimeNanoseconds > expiry {
                    return .answer(.close(reason: "the SASL session expired (connections.max.reauth.ms) without re-authentication"))
                }
                return .pass
            }
            if principal != nil, expiry.map({ DispatchTime.now().uptimeNanoseconds <= $0 }) ?? true {
                // Re-authenticating: the old session still holds.
                return .pass
            }
            return .answer(illegalState(header, "Unexpected Kafka request of type \(header.api?.name ?? "\(header.apiKey)") during SASL handshake"))
        }
    }

    private func illegalState(_ header: KafkaRequestHeader, _ reason: String) -> KafkaReply {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(6))
        buffer.writeInteger(header.correlationId)
        buffer.writeInteger(KafkaErrorCode.illegalSaslState.rawValue)
        return .responseThenClose(KafkaResponseFrame(bytes: buffer, deferredSpans: []), reason: reason)
    }

    private func handshake(_ header: KafkaRequestHeader, _ reader: inout KafkaReader) -> KafkaReply {
        let request: SaslHandshakeRequest
        do {
            if header.api!.isFlexible(header.apiVersion) { try KafkaRequestHeader.skipTagSection(from: &reader) }
            request = try SaslHandshakeRequest(from: &reader, version: header.apiVersion)
        } catch {
            return .close(reason: "malformed SaslHandshake: \(error)")
        }
        switch state {
        case .initial, .authenticated: break
        case .handshaken, .rawTokens:
            return illegalState(header, "SaslHandshake received twice")
        }
        func respond(_ code: KafkaErrorCode) -> KafkaFrameBox {
            KafkaFrameBox(KafkaResponseFrame.encode(
                SaslHandshakeResponse(errorCode: code.rawValue, mechanisms: config.saslMechanisms),
                correlationId: header.correlationId, api: .saslHandshake, version: header.apiVersion))
        }
        guard let session = SaslServerSession(mechanism: request.mechanism, store: store, enabled: config.saslMechanisms) else {
            events(false, "", request.mechanism, "unsupported SASL mechanism")
            return .responseThenClose(respond(.unsupportedSaslMechanism).frame, reason: "unsupported SASL mechanism \(request.mechanism)")
        }
        if header.apiVersion == 0 {
            guard principal == nil else { return illegalState(header, "re-authentication needs SaslHandshake v1") }
            state = .rawTokens(session)
        } else {
            state = .handshaken(session)
        }
        return .response(respond(.none).frame)
    }

    private func authenticate(_ header: KafkaRequestHeader, _ reader: inout KafkaReader) -> KafkaReply {
        guard case .handshaken(var session) = state else {
            return illegalState(header, "SaslAuthenticate before SaslHandshake")
        }
        let request: SaslAuthenticateRequest
        do {
            if header.api!.isFlexible(header.apiVersion) { try KafkaRequestHeader.skipTagSection(from: &reader) }
            request = try SaslAuthenticateRequest(from: &reader, version: header.apiVersion)
        } catch {
            return .close(reason: "malformed SaslAuthenticate: \(error)")
        }
        func respond(_ code: KafkaErrorCode, message: String? = nil, bytes: [UInt8], lifetime: Int64 = 0) -> KafkaResponseFrame {
            KafkaResponseFrame.encode(
                SaslAuthenticateResponse(errorCode: code.rawValue, errorMessage: message, authBytes: ByteBuffer(bytes: bytes), sessionLifetimeMs: lifetime),
                correlationId: header.correlationId, api: .saslAuthenticate, version: header.apiVersion)
        }
        let token = Array(request.authBytes.readableBytesView)
        switch session.step(token) {
        case .challenge(let bytes):
            state = .handshaken(session)
            return .response(respond(.none, bytes: bytes))
        case .success(let bytes, let who):
            succeeded(who, session.mechanism)
            return .response(respond(.none, bytes: bytes, lifetime: config.reauthMillis ?? 0))
        case .failure(let error):
            events(false, session.user ?? "", session.mechanism, error.message)
            state = .initial
            return .responseThenClose(respond(.saslAuthenticationFailed, message: error.message, bytes: []), reason: error.message)
        }
    }

    /// After SaslHandshake v0: the frame is a raw token, and so is the answer.
    private func rawToken(_ frame: ByteBuffer, _ session: inout SaslServerSession) -> KafkaReply {
        let mechanism = session.mechanism
        let step = session.step(Array(frame.readableBytesView))
        func raw(_ bytes: [UInt8]) -> KafkaResponseFrame {
            var buffer = ByteBuffer()
            buffer.writeInteger(Int32(bytes.count))
            buffer.writeBytes(bytes)
            return KafkaResponseFrame(bytes: buffer, deferredSpans: [])
        }
        switch step {
        case .challenge(let bytes):
            state = .rawTokens(session)
            return .response(raw(bytes))
        case .success(let bytes, let who):
            succeeded(who, mechanism)
            // Even PLAIN's empty answer is sent (as Kafka's broker does).
            return .response(raw(bytes))
        case .failure(let error):
            events(false, session.user ?? "", mechanism, error.message)
            return .close(reason: error.message)
        }
    }

    private func succeeded(_ who: Principal, _ mechanism: String) {
        state = .authenticated
        principal = who
        expiry = config.reauthMillis.map { DispatchTime.now().uptimeNanoseconds + UInt64($0) * 1_000_000 }
        events(true, who.description, mechanism, "")
    }
}

/// A response frame (a box so nested functions can return one without capturing the header twice).
private struct KafkaFrameBox {
    let frame: KafkaResponseFrame
    init(_ frame: KafkaResponseFrame) { self.frame = frame }
}

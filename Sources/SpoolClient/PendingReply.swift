import NIOConcurrencyHelpers
import NIOCore

/// A call's answer: the response message bytes and the raw payload.
public struct SpoolReply: Sendable {
    public var message: ByteBuffer
    public var payload: ByteBuffer
}

/// A call whose request is on its way and whose reply can be awaited later.
/// Completed exactly once: by the reply, a status, the deadline sweep or the connection's end.
public final class SpoolPendingReply: Sendable {
    private let state = NIOLockedValueBox<(result: Result<SpoolReply, Error>?, waiter: CheckedContinuation<SpoolReply, Error>?)>((nil, nil))

    init() {}

    func complete(_ result: Result<SpoolReply, Error>) {
        let waiter = state.withLockedValue { s -> CheckedContinuation<SpoolReply, Error>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            if s.result == nil { s.result = result }
            return nil
        }
        waiter?.resume(with: result)
    }

    /// The reply (waits for it).
    public var reply: SpoolReply {
        get async throws {
            try await withCheckedThrowingContinuation { c in
                let ready = state.withLockedValue { s -> Result<SpoolReply, Error>? in
                    if let r = s.result { return r }
                    s.waiter = c
                    return nil
                }
                if let ready { c.resume(with: ready) }
            }
        }
    }
}

import NIOConcurrencyHelpers
import NIOCore

/// The idle keep-alive connections to one endpoint (at most `idleMax`); a call takes one or
/// opens a new one, and gives it back when the server kept it open.
final class EndpointPool: Sendable {
    let endpoint: EtcdEndpoint
    private let idleMax: Int
    private struct State {
        var idle: [HTTPConnection] = []
        var closed = false
    }
    private let state = NIOLockedValueBox(State())

    init(endpoint: EtcdEndpoint, idleMax: Int) {
        self.endpoint = endpoint
        self.idleMax = idleMax
    }

    func unary(path: String, body: ByteBuffer, deadline: NIODeadline, connectTimeout: TimeAmount,
               bodyBytesMax: Int, group: any EventLoopGroup) async throws -> HTTPAnswer {
        let connection = try await acquire(group: group, connectTimeout: min(connectTimeout, deadline - .now()))
        do {
            let answer = try await connection.unary(path: path, body: body, deadline: deadline, bodyBytesMax: bodyBytesMax)
            if answer.keepAlive { release(connection) } else { connection.close() }
            return answer
        } catch {
            connection.close()
            throw error
        }
    }

    func acquire(group: any EventLoopGroup, connectTimeout: TimeAmount) async throws -> HTTPConnection {
        while let connection = state.withLockedValue({ $0.idle.popLast() }) {
            if connection.isActive { return connection }
            connection.close()
        }
        return try await HTTPConnection.connect(to: endpoint, group: group, timeout: max(connectTimeout, .milliseconds(1)))
    }

    private func release(_ connection: HTTPConnection) {
        let keep = connection.isActive && state.withLockedValue { state in
            guard !state.closed, state.idle.count < idleMax else { return false }
            state.idle.append(connection)
            return true
        }
        if !keep { connection.close() }
    }

    func closeAll() {
        let connections = state.withLockedValue { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in connections { connection.close() }
    }
}

import ArgumentParser
import SpoolClient
import SpoolProtocol

/// `--broker HOST:PORT`, shared by every command that talks to a broker.
struct BrokerAddress: ParsableArguments {
    @Option(name: .long, help: "Broker address as HOST:PORT.")
    var broker = "127.0.0.1:9292"
    @Option(name: .long, help: "Give up connecting (TCP connect, then the handshake) after this many milliseconds.")
    var connectTimeoutMs = 10_000
    @Option(name: .long, help: "Deadline of each call to the broker, in milliseconds (a long poll adds its wait).")
    var requestTimeoutMs = 30_000

    func validate() throws {
        _ = try parse()
        guard (1...600_000).contains(connectTimeoutMs) else { throw ValidationError("--connect-timeout-ms must be 1...600000") }
        guard (1...3_600_000).contains(requestTimeoutMs) else { throw ValidationError("--request-timeout-ms must be 1...3600000") }
    }

    func parse() throws -> (host: String, port: Int) {
        guard let colon = broker.lastIndex(of: ":"), let port = Int(broker[broker.index(after: colon)...]),
              (1...65535).contains(port), colon != broker.startIndex else {
            throw ValidationError("--broker must be HOST:PORT, e.g. 127.0.0.1:9292 (got '\(broker)')")
        }
        return (String(broker[..<colon]), port)
    }

    /// Connects, runs `body`, and closes the connection whatever happens.
    func withConnection<R>(_ body: (SpoolConnection) async throws -> R) async throws -> R {
        let connection = try await connect()
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    func connect() async throws -> SpoolConnection {
        let (host, port) = try parse()
        var config = ConnectionConfig(host: host, port: port)
        config.connectTimeoutMillis = connectTimeoutMs
        config.handshakeTimeoutMillis = connectTimeoutMs
        config.requestTimeoutMillis = requestTimeoutMs
        // Failures are SpoolClientError, whose description is the sentence to print.
        return try await SpoolConnection.connect(config)
    }
}

/// A command-line failure with a plain message (ArgumentParser prints it and exits 1).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Parses `key=value` options.
func parseConfigs(_ items: [String]) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("--config takes key=value, got '\(item)'")
        }
        out[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return out
}

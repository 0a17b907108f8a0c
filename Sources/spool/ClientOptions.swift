import ArgumentParser
import SpoolClient
import SpoolProtocol

/// `--broker HOST:PORT`, shared by every command that talks to a broker.
struct BrokerAddress: ParsableArguments {
    @Option(name: .long, help: "Broker address as HOST:PORT.")
    var broker = "127.0.0.1:9292"

    func validate() throws {
        _ = try parse()
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
        do {
            return try await SpoolConnection.connect(host: host, port: port)
        } catch let error as SpoolStatusError {
            throw error
        } catch {
            throw CLIError("cannot reach the broker at \(broker): \(error)")
        }
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

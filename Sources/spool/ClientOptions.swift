import Foundation
import ArgumentParser
import Synchronization
import SpoolClient
import SpoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `--broker HOST:PORT[,HOST:PORT...]`, shared by every command that talks to a broker (the
/// first that answers is asked; producers and consumers then reach each partition's leader), with the native
/// listener's TLS (`--tls-ca`, `--tls-cert`/`--tls-key`) and SCRAM login (`--sasl-user`,
/// `--sasl-mechanism`, `--password-stdin`), as `spool acl` takes them for the Kafka listener.
struct BrokerAddress: ParsableArguments {
    @Option(name: .long, help: "Broker addresses as HOST:PORT[,HOST:PORT...]: the first that answers is asked, and producers and consumers learn the cluster's leaders from it.")
    var broker = "127.0.0.1:9292"
    @Option(name: .long, help: "Give up connecting (TCP connect, then the handshake) after this many milliseconds.")
    var connectTimeoutMs = 10_000
    @Option(name: .long, help: "Deadline of each call to the broker, in milliseconds (a long poll adds its wait).")
    var requestTimeoutMs = 30_000
    @Option(name: .long, help: "TLS to the broker, trusting this PEM CA (the native listener's --ssl-certificate).")
    var tlsCa: String?
    @Option(name: .long, help: "PEM client certificate for mutual TLS (with --tls-key and --tls-ca).")
    var tlsCert: String?
    @Option(name: .long, help: "PEM private key of --tls-cert.")
    var tlsKey: String?
    @Option(name: .long, help: "Name the broker's certificate must carry (default: the --broker host).")
    var tlsServerName: String?
    @Option(name: .long, help: "Authenticate as this user with SCRAM (password from --password-stdin or a prompt).")
    var saslUser: String?
    @Option(name: .long, help: "SCRAM-SHA-256 or SCRAM-SHA-512 (with --sasl-user). Default: SCRAM-SHA-512.")
    var saslMechanism = "SCRAM-SHA-512"
    @Flag(name: .long, help: "Read the --sasl-user password from the first line of standard input (records, if any, follow it).")
    var passwordStdin = false

    /// The password, read once per process (a command may connect more than once).
    private static let password = Mutex<String?>(nil)

    func validate() throws {
        _ = try parse()
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsCert != nil || tlsServerName != nil, tlsCa == nil {
            throw ValidationError("--tls-cert and --tls-server-name need --tls-ca (TLS to the broker)")
        }
        guard ClientSaslConfig.mechanisms.contains(saslMechanism) else {
            throw ValidationError("--sasl-mechanism must be \(ClientSaslConfig.mechanisms.joined(separator: " or ")) (got '\(saslMechanism)')")
        }
        if passwordStdin && saslUser == nil { throw ValidationError("--password-stdin needs --sasl-user") }
        guard (1...600_000).contains(connectTimeoutMs) else { throw ValidationError("--connect-timeout-ms must be 1...600000") }
        guard (1...3_600_000).contains(requestTimeoutMs) else { throw ValidationError("--request-timeout-ms must be 1...3600000") }
    }

    /// Most addresses in one `--broker` list.
    static let brokersMax = 64

    /// The first `--broker` address.
    func parse() throws -> (host: String, port: Int) {
        try parseAll()[0]
    }

    /// Every `--broker` address, in order.
    func parseAll() throws -> [(host: String, port: Int)] {
        let items = broker.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !items.isEmpty, items.count <= Self.brokersMax else {
            throw ValidationError("--broker takes 1 to \(Self.brokersMax) addresses (got \(items.count))")
        }
        return try items.map { item in
            guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]),
                  (1...65535).contains(port), colon != item.startIndex else {
                throw ValidationError("--broker must be HOST:PORT or a list HOST:PORT,HOST:PORT,..., e.g. 127.0.0.1:9292 (got '\(item)')")
            }
            return (String(item[..<colon]), port)
        }
    }

    /// Connects to the first broker of the list that answers (for the cluster's producers
    /// and consumers, which reach each partition's leader from there), runs `body`, and
    /// closes every connection whatever happens.
    func withRouter<R>(_ body: (BrokerRouter) async throws -> R) async throws -> R {
        let router = try await BrokerRouter.connect(try configs())
        do {
            let result = try await body(router)
            await router.close()
            return result
        } catch {
            await router.close()
            throw error
        }
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

    /// Connects to the first broker of the list that answers; fails with the last one's error.
    func connect() async throws -> SpoolConnection {
        var last: Error?
        for config in try configs() {
            do {
                // Failures are SpoolClientError, whose description is the sentence to print.
                return try await SpoolConnection.connect(config)
            } catch {
                last = error
            }
        }
        throw last!
    }

    /// One connection config per `--broker` address.
    func configs() throws -> [ConnectionConfig] {
        try parseAll().map { try config(host: $0.host, port: $0.port) }
    }

    private func config(host: String, port: Int) throws -> ConnectionConfig {
        var config = ConnectionConfig(host: host, port: port)
        config.connectTimeoutMillis = connectTimeoutMs
        config.handshakeTimeoutMillis = connectTimeoutMs
        config.requestTimeoutMillis = requestTimeoutMs
        if let tlsCa {
            config.tls = ClientTLSConfig(caPath: tlsCa, certificatePath: tlsCert, keyPath: tlsKey, serverName: tlsServerName)
        }
        if let saslUser {
            config.sasl = ClientSaslConfig(user: saslUser, password: try password(for: saslUser), mechanism: saslMechanism)
        }
        return config
    }
}

extension BrokerAddress {
    /// The `--sasl-user` password: the first line of standard input, read byte by byte so
    /// that the records after it (`spool produce`) stay unread, or a terminal prompt.
    func password(for user: String) throws -> String {
        if let known = Self.password.withLock({ $0 }) { return known }
        let password: String
        if passwordStdin {
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(0, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            password = String(decoding: bytes, as: UTF8.self)
        } else {
            guard isatty(0) == 1, let typed = getpass("Password for \(user): ") else {
                throw CLIError("no terminal to ask for the password of \(user): pass it on standard input with --password-stdin")
            }
            password = String(cString: typed)
        }
        guard !password.isEmpty else { throw CLIError("the password is empty") }
        Self.password.withLock { $0 = password }
        return password
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

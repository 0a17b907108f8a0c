import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SpoolAdminHTTP

/// `--admin HOST:PORT`: where a broker's admin HTTP listener is (for `broker info` and
/// the members part of `group describe`).
struct AdminAddress: ParsableArguments {
    /// `--broker`'s default (BrokerAddress): with it, the admin listener's default applies too.
    static let defaultBroker = "127.0.0.1:9292"

    @Option(name: .long, help: "The broker's admin HTTP address as HOST:PORT (spool broker --http-listen).")
    var admin: String?

    /// The address given, or the default one when `brokerIsDefault` (a broker on the
    /// default native port most likely has its admin listener on the default port too).
    func resolved(brokerIsDefault: Bool) -> String? {
        admin ?? (brokerIsDefault ? OperationsOptions.defaultHTTPListen : nil)
    }
}

/// A tiny client of the admin JSON API (`/v1/…`), bounded in time.
struct AdminHTTPClient {
    /// Longest a call may take, connection included.
    static let timeoutSeconds: TimeInterval = 5

    let address: String

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        guard let url = URL(string: "http://\(address)\(path)") else { throw CLIError("bad admin address \(address)") }
        var request = URLRequest(url: url)
        request.timeoutInterval = Self.timeoutSeconds
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("cannot reach the admin listener at \(address): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            let message = (try? JSONDecoder().decode(ErrorView.self, from: data)).map { "\($0.code): \($0.message)" } ?? "HTTP \(status)"
            throw CLIError("admin listener at \(address): \(message)")
        }
        return try JSONDecoder().decode(T.self, from: data)
    }
}

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

/// `--admin-user NAME [--admin-password-stdin]`: the login of an admin listener with
/// `http.auth.enabled` (HTTP basic with a `spool user`); the password comes from standard
/// input or a prompt, never the command line.
struct AdminLogin: ParsableArguments {
    @Option(name: .long, help: "Log in to the admin HTTP listener as this user (spool broker --http-auth); the password from a prompt or --admin-password-stdin.")
    var adminUser: String?
    @Flag(name: .long, help: "Read the --admin-user password from the first line of standard input.")
    var adminPasswordStdin = false

    /// The `Authorization` header value, or nil without `--admin-user`.
    func authorization() throws -> String? {
        guard let adminUser else { return nil }
        let password = try readPassword(fromStdin: adminPasswordStdin, prompt: "Password for \(adminUser): ")
        return "Basic " + Data("\(adminUser):\(password)".utf8).base64EncodedString()
    }
}

/// A tiny client of the admin JSON API (`/v1/…`), bounded in time.
struct AdminHTTPClient {
    /// A session that answers a 401 challenge by giving up (Foundation's default handling
    /// on Linux waits for credentials that never come): the login is sent up front or not at all.
    static let session = URLSession(configuration: .ephemeral, delegate: ChallengeRefuser(), delegateQueue: nil)

    final class ChallengeRefuser: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
            completionHandler(.cancelAuthenticationChallenge, nil)
        }
    }

    /// Longest a call may take, connection included.
    static let timeoutSeconds: TimeInterval = 5

    let address: String
    /// `Authorization` header value (``AdminLogin``), if any.
    var authorization: String?

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        guard let url = URL(string: "http://\(address)\(path)") else { throw CLIError("bad admin address \(address)") }
        var request = URLRequest(url: url)
        request.timeoutInterval = Self.timeoutSeconds
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await Self.session.data(for: request)
        } catch let error as URLError where error.code == .cancelled || error.code == .userAuthenticationRequired {
            throw CLIError("admin listener at \(address): UNAUTHENTICATED: " + (authorization == nil ? "it needs a login (--admin-user NAME)" : "invalid credentials"))
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

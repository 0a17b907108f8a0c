import Foundation
import SpoolTestSupport
import Testing

/// `spool broker --ssl-* --native-auth required` and the native commands' `--tls-ca`,
/// `--tls-cert`/`--tls-key`, `--sasl-user`, `--password-stdin`, against a broker process.
@Suite struct NativeSecurityCLITests {
    /// tools/gen-certs.sh into `directory`/certs.
    static func certificates(in directory: String) throws -> String {
        let certs = directory + "/certs"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Executables.root.appendingPathComponent("tools/gen-certs.sh").path, certs]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ProcessError("tools/gen-certs.sh \(certs) failed") }
        return certs
    }

    @Test func tlsAndScramFromTheCommandLine() throws {
        let directory = NSTemporaryDirectory() + "spool-cli-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certs = try Self.certificates(in: directory)
        let data = directory + "/data"
        var r = try runCommand("spool", ["user", "create", "alice", "--data-dir", data, "--password-stdin"], stdin: "alice-pw\n")
        #expect(r.status == 0, "\(r.stderr)")
        let broker = try BrokerProcess(arguments: [
            "broker", "--data-dir", data, "--listen", "127.0.0.1:0",
            "--ssl-certificate", "\(certs)/broker.pem", "--ssl-key", "\(certs)/broker.key",
            "--ssl-client-ca", "\(certs)/ca.pem", "--ssl-client-auth", "requested", "--native-auth", "required",
        ], directory: directory)
        defer { _ = broker.terminate() }
        let tls = ["--tls-ca", "\(certs)/ca.pem"]
        let login = tls + ["--sasl-user", "alice", "--password-stdin"]
        // The password, then the records, on standard input.
        r = try broker.spool(["topic", "create", "events"] + login, stdin: "alice-pw\n")
        #expect(r.status == 0, "\(r.stderr)")
        r = try broker.spool(["produce", "events"] + login, stdin: "alice-pw\none\ntwo\nthree\n")
        #expect(r.status == 0, "\(r.stderr)")
        r = try broker.spool(["consume", "events", "--from", "beginning", "--exit-at-end", "--sasl-mechanism", "SCRAM-SHA-256"] + login, stdin: "alice-pw\n")
        #expect(r.stdout == "one\ntwo\nthree\n", "\(r.stderr)")
        // A client certificate authenticates without a password.
        r = try broker.spool(["topic", "list", "--tls-cert", "\(certs)/client.pem", "--tls-key", "\(certs)/client.key"] + tls)
        #expect(r.status == 0 && r.stdout.contains("events"), "\(r.stderr)")
        // Refusals, each with a message.
        for (arguments, stdin, message) in [
            (["topic", "list"] + login, "wrong\n", "Authentication failed"),
            (["topic", "list"] + tls, "", "requires authentication"),
            (["topic", "list"], "", "TLS"),
            (["topic", "list", "--tls-cert", "\(certs)/client.pem"] + tls, "", "--tls-key"),
            (["topic", "list", "--sasl-mechanism", "PLAIN"] + login, "alice-pw\n", "SCRAM-SHA-256 or SCRAM-SHA-512"),
        ] {
            r = try broker.spool(arguments, stdin: stdin)
            #expect(r.status != 0 && r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
        #expect(broker.logText.contains("authentication failed") && broker.logText.contains("listener=native+tls"))
        #expect(broker.logText.contains("mechanism=TLS") && broker.logText.contains("TLS handshake failed"), "the plaintext client's attempt is logged")
        // Counted like the Kafka listener's: SCRAM successes and the wrong password, the certificate.
        let admin = try #require(broker.adminAddress)
        let metrics = try String(contentsOf: URL(string: "http://\(admin)/metrics")!, encoding: .utf8)
        let lines = metrics.split(separator: "\n").filter { $0.hasPrefix("spool_authentications_total{") }
        func count(_ result: String, _ mechanism: String) -> Double {
            lines.first { $0.contains("result=\"\(result)\"") && $0.contains("mechanism=\"\(mechanism)\"") }
                .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        #expect(count("success", "SCRAM-SHA-512") >= 2 && count("success", "SCRAM-SHA-256") >= 1, "\(lines)")
        #expect(count("failure", "SCRAM-SHA-512") >= 1 && count("success", "TLS") >= 1 && count("failure", "TLS") >= 1, "\(lines)")
    }

    @Test func badSecuritySettingsStopTheBrokerWithAMessage() throws {
        for (arguments, message) in [
            (["--ssl-certificate", "/nonexistent.pem"], "ssl.key"),
            (["--ssl-certificate", "/nonexistent.pem", "--ssl-key", "/nonexistent.key"], "cannot load TLS certificate"),
            (["--native-auth", "sometimes"], "native.auth must be none, optional or required"),
            (["--ssl-client-auth", "required"], "ssl.client.ca"),
        ] {
            let directory = NSTemporaryDirectory() + "spool-cli-badtls-" + UUID().uuidString
            let r = try runCommand("spool", ["broker", "--data-dir", directory, "--listen", "127.0.0.1:0", "--kafka-listen", "none", "--http-listen", "none"] + arguments)
            #expect(r.status != 0 && (r.stderr + r.stdout).contains(message), "\(arguments): \(r.stderr)")
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

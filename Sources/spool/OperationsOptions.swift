import ArgumentParser
import Logging
import SpoolAdminHTTP
import SpoolSecurity

/// `spool broker` options for operators: the admin HTTP listener (address, TLS, login) and
/// the log. Each has a config-file key (`http.listen`, `http.ssl.certificate`, …); flags win.
struct OperationsOptions: ParsableArguments {
    static let defaultHTTPListen = "127.0.0.1:9644"
    static let keys = ["http.listen", "http.ssl.certificate", "http.ssl.key", "http.auth.enabled", "http.auth.open.paths",
                       "http.auth.token-file", "log.level", "log.format"]

    @Option(name: .customLong("http-listen"),
            help: "HOST:PORT of the admin HTTP listener (/metrics, /health, /ready, /v1/, the console), or 'none'. Default: \(defaultHTTPListen).")
    var httpListen: String?
    @Option(name: .customLong("http-ssl-certificate"), help: "PEM certificate (chain) of the admin HTTP listener: it then speaks HTTPS only (TLS 1.2+).")
    var httpSslCertificate: String?
    @Option(name: .customLong("http-ssl-key"), help: "PEM private key of the admin HTTP listener.")
    var httpSslKey: String?
    @Flag(name: .customLong("http-auth"), inversion: .prefixedNo,
          help: "Require a login (HTTP basic with a `spool user`, or a bearer token) on the admin HTTP listener but its open paths. Default: on when --authorizer is.")
    var httpAuth: Bool?
    @Option(name: .customLong("http-auth-open-paths"), help: "Comma-separated paths answered without a login ('/x*' is a prefix; '' none). Default: /metrics,/health.")
    var httpAuthOpenPaths: String?
    @Option(name: .customLong("http-auth-token-file"), help: "File of 'USER TOKEN' lines: 'Authorization: Bearer TOKEN' logs in as User:USER.")
    var httpAuthTokenFile: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Default: info.")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text or json (one object per line). Default: text.")
    var logFormat: String?

    /// What the options resolve to.
    struct Settings {
        /// nil when the admin listener is off.
        var http: (host: String, port: Int)?
        /// TLS of the admin listener (nil: plain HTTP).
        var httpTLS: TLSSettings?
        /// `http.auth.enabled` when given (nil: follows `authorizer.enabled`).
        var httpAuth: Bool?
        var httpOpenPaths: [String]
        var httpTokenFile: String?
        var logLevel: Logger.Level
        var logFormat: LogFormat
    }

    /// Resolves flags over the config file's `file` settings over the defaults.
    func resolve(file: [String: String]) throws -> Settings {
        let listen = httpListen ?? file["http.listen"] ?? Self.defaultHTTPListen
        var http: (String, Int)?
        if listen != "none" {
            guard let colon = listen.lastIndex(of: ":"), colon != listen.startIndex,
                  let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
                throw ValidationError("http.listen must be HOST:PORT or none, e.g. \(Self.defaultHTTPListen) (got '\(listen)')")
            }
            http = (String(listen[..<colon]), port)
        }
        let certificate = httpSslCertificate ?? file["http.ssl.certificate"]
        let key = httpSslKey ?? file["http.ssl.key"]
        var tls: TLSSettings?
        switch (certificate, key) {
        case (nil, nil): tls = nil
        case (let certificate?, let key?): tls = TLSSettings(certificatePath: certificate, keyPath: key)
        default: throw ValidationError("the admin listener's TLS needs both http.ssl.certificate and http.ssl.key (--http-ssl-certificate, --http-ssl-key)")
        }
        var auth = httpAuth
        if auth == nil, let text = file["http.auth.enabled"] {
            guard text == "true" || text == "false" else { throw ValidationError("http.auth.enabled must be true or false (got '\(text)')") }
            auth = text == "true"
        }
        var openPaths = AdminHTTPAuth.defaultOpenPaths
        if let text = httpAuthOpenPaths ?? file["http.auth.open.paths"] {
            guard let paths = AdminHTTPAuth.parseOpenPaths(text) else {
                throw ValidationError("http.auth.open.paths must be comma-separated paths starting with '/', e.g. /metrics,/health (got '\(text)')")
            }
            openPaths = paths
        }
        let levelText = logLevel ?? file["log.level"] ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("log.level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(levelText)')")
        }
        let formatText = logFormat ?? file["log.format"] ?? "text"
        guard let format = LogFormat(rawValue: formatText) else {
            throw ValidationError("log.format must be text or json (got '\(formatText)')")
        }
        return Settings(http: http, httpTLS: tls, httpAuth: auth, httpOpenPaths: openPaths,
                        httpTokenFile: httpAuthTokenFile ?? file["http.auth.token-file"], logLevel: level, logFormat: format)
    }
}

/// How log lines are written (to standard error).
enum LogFormat: String {
    /// `2026-11-26T13:00:00.123Z info spool.broker: topic created topic=orders partitions=3`
    case text
    /// One JSON object per line: ts, level, logger, msg, then the metadata keys.
    case json
}

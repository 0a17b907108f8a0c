import ArgumentParser
import Logging

/// `spool broker` options for operators: the admin HTTP listener and the log.
/// Each has a config-file key (`http.listen`, `log.level`, `log.format`); flags win.
struct OperationsOptions: ParsableArguments {
    static let defaultHTTPListen = "127.0.0.1:9644"
    static let keys = ["http.listen", "log.level", "log.format"]

    @Option(name: .customLong("http-listen"),
            help: "HOST:PORT of the admin HTTP listener (/metrics, /health, /ready, /v1/, the console), or 'none'. Default: \(defaultHTTPListen).")
    var httpListen: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Default: info.")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text or json (one object per line). Default: text.")
    var logFormat: String?

    /// What the options resolve to.
    struct Settings {
        /// nil when the admin listener is off.
        var http: (host: String, port: Int)?
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
        let levelText = logLevel ?? file["log.level"] ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("log.level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(levelText)')")
        }
        let formatText = logFormat ?? file["log.format"] ?? "text"
        guard let format = LogFormat(rawValue: formatText) else {
            throw ValidationError("log.format must be text or json (got '\(formatText)')")
        }
        return Settings(http: http, logLevel: level, logFormat: format)
    }
}

/// How log lines are written (to standard error).
enum LogFormat: String {
    /// `2026-11-26T13:00:00.123Z info spool.broker: topic created topic=orders partitions=3`
    case text
    /// One JSON object per line: ts, level, logger, msg, then the metadata keys.
    case json
}

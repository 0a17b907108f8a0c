import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The broker's log handler: one line per message on standard error, as text or as one
/// JSON object (`ts`, `level`, `logger`, `msg`, then every metadata key as a string).
///
/// ```swift
/// LoggingSystem.bootstrap { SpoolLogHandler(label: $0, format: .json, level: .info) }
/// ```
struct SpoolLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Lines are written whole, one `write` each, so concurrent loggers never interleave.
    private static let lock = NSLock()

    init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let ts = Self.timestamp()
        var line: String
        switch format {
        case .text:
            line = "\(ts) \(event.level) \(label): \(event.message)"
            for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        case .json:
            line = "{\"ts\":\(Self.quote(ts)),\"level\":\(Self.quote(event.level.rawValue)),\"logger\":\(Self.quote(label)),\"msg\":\(Self.quote("\(event.message)"))"
            for (key, value) in all.sorted(by: { $0.key < $1.key }) where !["ts", "level", "logger", "msg"].contains(key) {
                line += ",\(Self.quote(key)):\(Self.quote("\(value)"))"
            }
            line += "}"
        }
        line += "\n"
        Self.lock.lock()
        defer { Self.lock.unlock() }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var written = 0
            while written < raw.count {
                let n = write(2, raw.baseAddress! + written, raw.count - written)
                if n <= 0 { break }
                written += n
            }
        }
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

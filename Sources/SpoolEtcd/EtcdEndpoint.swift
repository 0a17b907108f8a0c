/// One etcd member's client URL (`http://HOST:PORT`; the gateway here speaks plain HTTP/1.1).
public struct EtcdEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `http://HOST:PORT` (a trailing `/` is allowed).
    public init(url: String) throws {
        var text = Substring(url.trimmingWhitespace())
        guard text.hasPrefix("http://") else {
            throw EtcdError(.invalidArgument, "etcd endpoint \(url) is not http://HOST:PORT (TLS is not supported)")
        }
        text = text.dropFirst("http://".count)
        if text.hasSuffix("/") { text = text.dropLast() }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              port > 0, port < 65536, colon != text.startIndex else {
            throw EtcdError(.invalidArgument, "etcd endpoint \(url) has no HOST:PORT")
        }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = String(host)
        self.port = port
    }

    /// Parses a comma-separated list (`http://127.0.0.1:2379,http://127.0.0.1:12379`).
    public static func list(_ urls: String) throws -> [EtcdEndpoint] {
        let parts = urls.split(separator: ",").map(String.init).filter { !$0.trimmingWhitespace().isEmpty }
        guard !parts.isEmpty else { throw EtcdError(.invalidArgument, "no etcd endpoint in '\(urls)'") }
        return try parts.map { try EtcdEndpoint(url: $0) }
    }

    public var description: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return String(s)
    }
}

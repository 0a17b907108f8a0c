import Foundation
import Hummingbird
import NIOCore

/// The web console's static files (HTML, CSS, JS: no build step, no CDN), loaded
/// once from the target's resources and served from memory.
struct ConsoleAssets: Sendable {
    /// Largest console file accepted (they are hand-written pages, not data).
    static let maxFileBytes = 1 << 20

    let files: [String: (contentType: String, body: ByteBuffer)]

    static func load() throws -> ConsoleAssets {
        guard let directory = Bundle.module.url(forResource: "Console", withExtension: nil) else {
            throw AdminAPIError(.internal, "console resources are missing from the bundle")
        }
        var files: [String: (String, ByteBuffer)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            guard data.count <= maxFileBytes else { throw AdminAPIError(.internal, "console file \(name) is over \(maxFileBytes) bytes") }
            files[name] = (contentType(name), ByteBuffer(bytes: data))
        }
        return ConsoleAssets(files: files)
    }

    static func contentType(_ name: String) -> String {
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        if name.hasSuffix(".svg") { return "image/svg+xml" }
        return "application/octet-stream"
    }

    func response(for name: String) -> Response {
        guard let file = files[name] else {
            return AdminHTTPListener.text("no such console file\n", status: .notFound)
        }
        var headers = HTTPFields()
        headers[.contentType] = file.contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.body))
    }
}

/// A small line-based metadata file with a version header line, read whole and
/// replaced atomically (`topics.meta`, `consumer-offsets.meta`).
enum MetadataFile {
    /// The lines after the header, or nil when the file does not exist.
    /// Throws `.corrupt` when the header is not `header`.
    static func readLines(_ path: String, header: String, io: FileIO) throws -> [Substring]? {
        guard let bytes = try Directory.readFile(path, io: io) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first.map(String.init) == header else {
            throw StorageError(.corrupt, "\(path) does not start with '\(header)'")
        }
        lines.removeFirst()
        return lines
    }

    /// Replaces the file with the header and `lines` (each without its newline).
    static func write(_ path: String, header: String, lines: [String], io: FileIO) throws {
        var text = header + "\n"
        for line in lines { text += line + "\n" }
        try Directory.writeAtomically(Array(text.utf8), to: path, io: io)
    }
}

import Synchronization

/// The durable high-water mark of producer ids handed out (`producer-ids.meta`).
///
/// Ids are reserved in blocks: ``reserve(_:)`` makes the end of the new block
/// durable *before* any id of it is used, so a restart (clean or not) starts
/// after every id that may have been given out, never reusing one; at most one
/// block is skipped per restart.
public final class ProducerIdBlockStore: Sendable {
    public static let fileName = "producer-ids.meta"
    static let header = "spool-producer-ids v1"

    let path: String
    let io: FileIO
    /// First id not yet reserved.
    private let next: Mutex<Int64>

    public init(dataDirectory: String, io: FileIO = PosixFileIO()) throws {
        path = dataDirectory + "/" + Self.fileName
        self.io = io
        var loaded: Int64 = 0
        if let lines = try MetadataFile.readLines(path, header: Self.header, io: io) {
            guard lines.count == 1, let value = Int64(lines[0]), value >= 0 else {
                throw StorageError(.corrupt, "\(path): expected one non-negative id, found \(lines)")
            }
            loaded = value
        }
        next = Mutex(loaded)
    }

    /// The first id never reserved (ids below it may have been handed out).
    public var nextUnreserved: Int64 { next.withLock { $0 } }

    /// Reserves the next `count` ids; durable on return.
    public func reserve(_ count: Int64) throws -> Range<Int64> {
        precondition(count > 0)
        return try next.withLock { next in
            let (end, overflow) = next.addingReportingOverflow(count)
            guard !overflow else { throw StorageError(.invalidConfig, "producer ids exhausted") }
            try MetadataFile.write(path, header: Self.header, lines: [String(end)], io: io)
            defer { next = end }
            return next..<end
        }
    }
}

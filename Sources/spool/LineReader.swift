#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor (standard input) in chunks and hands out its lines without
/// the newline, holding at most one chunk plus one line in memory.
struct LineReader {
    /// Bytes read per `read(2)`.
    static let chunkBytes = 256 << 10
    /// A longer line is an error, not a reason to buffer without bound.
    let maxLineBytes: Int
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var eof = false
    /// Lines handed out so far.
    private(set) var lineNumber = 0

    struct LineTooLong: Error, CustomStringConvertible {
        var line: Int
        var limit: Int
        var description: String { "line \(line) is longer than \(limit) bytes" }
    }

    init(fd: Int32 = 0, maxLineBytes: Int = 64 << 20) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
    }

    /// The next line, or nil at the end of input. A last line without a newline counts.
    mutating func next() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                scanned = start
                lineNumber += 1
                return line
            }
            scanned = buffer.count
            guard buffer.count - start <= maxLineBytes else { throw LineTooLong(line: lineNumber + 1, limit: maxLineBytes) }
            if eof {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                scanned = start
                lineNumber += 1
                return line
            }
            // Drop what was handed out, then read another chunk behind the partial line.
            if start > 0 {
                buffer.removeSubrange(0..<start)
                scanned -= start
                start = 0
            }
            let old = buffer.count
            buffer.reserveCapacity(old + Self.chunkBytes)
            buffer.append(contentsOf: repeatElement(0, count: Self.chunkBytes))
            let n = buffer.withUnsafeMutableBytes { raw in
                var n: Int
                repeat { n = read(fd, raw.baseAddress! + old, Self.chunkBytes) } while n < 0 && errno == EINTR
                return n
            }
            buffer.removeLast(Self.chunkBytes - max(n, 0))
            if n <= 0 { eof = true }
        }
    }
}

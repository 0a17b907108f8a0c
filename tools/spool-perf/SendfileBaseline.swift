import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `spool-perf sendfile-baseline FILE…`: what sendfile(2) alone moves over loopback.
///
/// A thread reads and discards from a loopback socket while the main thread
/// sendfile()s the given files into it, repeatedly, for a fixed number of bytes.
/// This is the ceiling for Spool's fetch path, measured on the same machine.
struct SendfileBaseline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendfile-baseline",
        abstract: "Measure raw sendfile(2) throughput over loopback (the ceiling for fetches).")

    @Argument(help: "Files to send (e.g. a topic's segment files).") var files: [String]
    @Option(help: "Bytes to move in total.") var bytes = 1 << 30
    @Flag(help: "Print a JSON summary as the last line.") var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one file") }
        for f in files where !FileManager.default.isReadableFile(atPath: f) { throw ValidationError("cannot read \(f)") }
    }

    func run() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
        listen(listener, 1)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        let sender = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sender, $0, len) } }
        let receiver = accept(listener, nil, nil)
        let reader = Thread {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
            while read(receiver, buffer, 1 << 20) > 0 {}
            buffer.deallocate()
        }
        reader.start()
        let fds = files.map { open($0, O_RDONLY) }
        let sizes = fds.map { fd -> Int in var st = stat(); fstat(fd, &st); return Int(st.st_size) }
        let start = ContinuousClock.now
        var moved = 0
        var i = 0
        while moved < bytes {
            var offset = off_t(0)
            let size = sizes[i % fds.count]
            while offset < size {
                let n = sendfile(sender, fds[i % fds.count], &offset, size - Int(offset))
                if n <= 0 { break }
                moved += n
            }
            i += 1
        }
        shutdown(sender, Int32(SHUT_WR))
        let d = ContinuousClock.now - start
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        let mb = Double(moved) / seconds / 1_048_576
        print("sendfile moved \(moved) bytes in \(String(format: "%.3f s: %.1f MB/sec", seconds, mb))")
        if json { print("{\"bytes\":\(moved),\"seconds\":\(String(format: "%.3f", seconds)),\"mb_per_sec\":\(String(format: "%.3f", mb))}") }
        close(sender)
        close(listener)
        fds.forEach { close($0) }
    }
}

import ArgumentParser
import Foundation
import SpoolAdminHTTP

/// `spool broker info`: a running broker's version, listeners, uptime and disk, read
/// from its admin HTTP listener.
struct BrokerInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a running broker's version, listeners, uptime and disk.",
        discussion: "Example: spool broker info --admin 127.0.0.1:9644")

    @Option(name: .long, help: "The broker's admin HTTP address as HOST:PORT.")
    var admin = OperationsOptions.defaultHTTPListen
    @OptionGroup var login: AdminLogin

    func run() async throws {
        let info = try await AdminHTTPClient(address: admin, authorization: try login.authorization())
            .get("/v1/broker", as: BrokerInfoView.self)
        print("version\t\(info.version)")
        let degraded = info.degraded ?? []
        print("ready\t\(info.ready ? "yes" : "no")\(degraded.isEmpty ? "" : ", degraded")")
        for sentence in degraded { print("degraded\t\(sentence)") }
        print("uptime\t\(Self.duration(info.uptimeSeconds))")
        for listener in info.listeners { print("listener\t\(listener.name)\t\(listener.address)") }
        print("data_dir\t\(info.dataDirectory)")
        if let free = info.diskFreeBytes, let total = info.diskTotalBytes {
            print("disk\t\(Self.bytes(free)) free of \(Self.bytes(total))")
        }
        print("topics\t\(info.topics)")
        print("partitions\t\(info.partitions) (\(info.partitionsStopped) stopped)")
        print("descriptors\t\(info.openDescriptors) open of \(info.descriptorLimit)")
        print("records\t\(info.recordsIn) in, \(info.recordsOut) out since start")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60)
        if d > 0 { return "\(d)d \(h)h \(m)m" }
        if h > 0 { return "\(h)h \(m)m \(s % 60)s" }
        if m > 0 { return "\(m)m \(s % 60)s" }
        return "\(s)s"
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }
}

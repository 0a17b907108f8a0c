import ArgumentParser
import Dispatch
import Foundation
import SpoolBroker
import SpoolStorage

#if canImport(Glibc)
import Glibc
#endif

/// `spool broker`: runs the broker until SIGINT or SIGTERM, then shuts down cleanly.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the Spool broker.",
        discussion: """
            Examples:
              spool broker                                  data in ./spool-data, listening on 127.0.0.1:9292
              spool broker --data-dir /var/lib/spool --listen 127.0.0.1:9300
            """
    )

    @Option(help: "Data directory (created if missing).") var dataDir = "spool-data"
    @Option(help: "HOST:PORT to listen on.") var listen = "127.0.0.1:9292"
    @Option(help: "Default partitions for new topics.") var defaultPartitions: Int32 = 1
    @Option(help: "Default retention.ms for topics (-1: forever).") var retentionMs: Int64 = 7 * 24 * 3_600_000
    @Option(help: "Default segment.bytes for topics.") var segmentBytes: Int64 = 1 << 30

    func run() async throws {
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:9292")
        }
        var config = BrokerConfig(dataDirectory: dataDir)
        config.host = String(parts[0])
        config.port = port
        guard defaultPartitions >= 1 else { throw ValidationError("--default-partitions must be at least 1") }
        config.defaultPartitions = defaultPartitions
        do {
            config.storage.topicDefaults = try TopicConfig(["retention.ms": String(retentionMs), "segment.bytes": String(segmentBytes)])
        } catch {
            throw ValidationError("\(error)")
        }
        let server = try await SpoolServer.start(config: config)
        let dataPath = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        print("spool broker \(Broker.version) listening on \(server.localAddress), data in \(dataPath)\(server.broker.storage.openedClean ? "" : " (recovered after an unclean stop)")")
        fflush(nil)
        // Wait for SIGINT or SIGTERM.
        let stop = AsyncStream<Int32> { continuation in
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
                source.setEventHandler { continuation.yield(sig) }
                source.resume()
                SignalSources.keep(source)
            }
        }
        for await sig in stop {
            print("received signal \(sig), shutting down")
            break
        }
        try await server.shutdown()
        print("stopped cleanly")
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    static func keep(_ source: DispatchSourceSignal) { sources.append(source) }
}

import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import SpoolClient
import SpoolProtocol
import SpoolRecords

/// `spool produce TOPIC`: one record per line of standard input.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce one record per line of standard input.",
        discussion: """
            Examples:
              echo hello | spool produce events
              printf 'user-1:login\\nuser-2:logout\\n' | spool produce events --key-separator : --acks all --print-offsets
            With --print-offsets, one line 'PARTITION OFFSET' per acknowledged record, in input order.
            Exits non-zero if any record was not acknowledged.
            """
    )

    @OptionGroup var address: BrokerAddress
    @Argument(help: "Topic to produce to.") var topic: String
    @Option(help: "Send every record to this partition (default: by key, or sticky round-robin).") var partition: Int32?
    @Option(help: "Split each line at the first occurrence of this string into key and value.") var keySeparator: String?
    @Option(help: "Codec: none, gzip or lz4.") var compression = "lz4"
    @Option(help: "Acknowledgement: 0 (none), 1 (written) or all (fsynced).") var acks = "1"
    @Option(help: "Wait this long for more records before sending a batch.") var lingerMs = 5
    @Option(help: "Close a batch at this many bytes.") var batchBytes = 64 * 1024
    @Flag(help: "Print 'PARTITION OFFSET' for every acknowledged record, in input order.") var printOffsets = false

    func validate() throws {
        guard let codec = CompressionCodec(name: compression), codec.isSupported else {
            throw ValidationError("--compression must be none, gzip or lz4 (got '\(compression)')")
        }
        guard ["0", "1", "all", "-1"].contains(acks) else { throw ValidationError("--acks must be 0, 1 or all (got '\(acks)')") }
        guard lingerMs >= 0 && lingerMs <= 60_000 else { throw ValidationError("--linger-ms must be 0...60000") }
        guard batchBytes >= 64 && batchBytes <= 16 << 20 else { throw ValidationError("--batch-bytes must be 64...16777216") }
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator cannot be empty") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
    }

    func run() async throws {
        var config = ProducerConfig()
        config.compression = CompressionCodec(name: compression)!
        config.acks = acks == "0" ? .none : acks == "1" ? .leader : .all
        config.lingerMillis = lingerMs
        config.batchBytes = batchBytes
        let failures = try await address.withConnection { connection -> Int in
            let producer = SpoolProducer(connection: connection, config: config)
            // Outcomes by input line; printed in input order as the front of the window completes.
            let outcomes = NIOLockedValueBox<[Int: Result<RecordMetadata, Error>]>([:])
            var next = 0      // next line number to report
            var sent = 0
            var failures = 0
            var out = ""
            func report(upTo limit: Int) {
                let ready = outcomes.withLockedValue { o -> [Result<RecordMetadata, Error>] in
                    var ready: [Result<RecordMetadata, Error>] = []
                    while next + ready.count < limit, let r = o.removeValue(forKey: next + ready.count) { ready.append(r) }
                    return ready
                }
                next += ready.count
                for r in ready {
                    switch r {
                    case .success(let m): if printOffsets { out += "\(m.partition) \(m.offset)\n" }
                    case .failure(let error):
                        failures += 1
                        FileHandle.standardError.write(Data("error: record not acknowledged: \(error)\n".utf8))
                    }
                }
                if !out.isEmpty {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            while let line = readLine(strippingNewline: true) {
                var key: [UInt8]?
                var value = Array(line.utf8)
                if let keySeparator, let range = line.range(of: keySeparator) {
                    key = Array(line[..<range.lowerBound].utf8)
                    value = Array(line[range.upperBound...].utf8)
                }
                let index = sent
                // Sends in input order: records of one partition get increasing offsets.
                try await producer.send(topic: topic, partition: partition, key: key, value: value) { result in
                    outcomes.withLockedValue { $0[index] = result }
                }
                sent += 1
                if sent % 4096 == 0 { report(upTo: sent) }
            }
            try await producer.flush()
            report(upTo: sent)
            if next < sent { failures += sent - next }
            return failures
        }
        if failures > 0 {
            throw CLIError("\(failures) record\(failures == 1 ? " was" : "s were") not acknowledged")
        }
    }
}

import ArgumentParser
import Foundation
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
            var pending: [Task<RecordMetadata, Error>] = []
            var head = 0
            var failures = 0
            var out = ""
            func settle(_ task: Task<RecordMetadata, Error>) async {
                do {
                    let m = try await task.value
                    if printOffsets { out += "\(m.partition) \(m.offset)\n" }
                } catch {
                    failures += 1
                    FileHandle.standardError.write(Data("error: record not acknowledged: \(error)\n".utf8))
                }
                if out.utf8.count > 64 * 1024 {
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
                let (k, v, p) = (key, value, partition)
                pending.append(Task { try await producer.send(topic: topic, partition: p, key: k, value: v) })
                if pending.count - head >= 10_000 {
                    await settle(pending[head])
                    head += 1
                    if head > 50_000 { pending.removeFirst(head); head = 0 }
                }
            }
            try await producer.flush()
            while head < pending.count {
                await settle(pending[head])
                head += 1
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            return failures
        }
        if failures > 0 {
            throw CLIError("\(failures) record\(failures == 1 ? " was" : "s were") not acknowledged")
        }
    }
}

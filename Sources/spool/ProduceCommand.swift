import ArgumentParser
import Foundation
import NIOCore
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
              seq 10 | spool produce events --header source=seq --header run=7
            With --key-separator, a line without the separator has a null key; one starting with it has an empty key.
            With --print-offsets, one line 'PARTITION OFFSET' per record as it is acknowledged, in input order;
            a record that failed prints an error on stderr at its place in the order.
            Input is read as it is sent: at most --max-unacknowledged records wait for their acknowledgement,
            so memory stays bounded however large the input. Exits non-zero if any record was not acknowledged.
            """
    )

    @OptionGroup var address: BrokerAddress
    @Argument(help: "Topic to produce to.") var topic: String
    @Option(help: "Send every record to this partition (default: by key, or sticky round-robin).") var partition: Int32?
    @Option(help: "Split each line at the first occurrence of this string into key and value.") var keySeparator: String?
    @Option(name: .customLong("header"), help: "A header key=value added to every record (repeatable).") var headers: [String] = []
    @Option(help: "Codec: none, gzip or lz4.") var compression = "lz4"
    @Option(help: "Acknowledgement: 0 (none), 1 (written) or all (fsynced).") var acks = "1"
    @Option(help: "Wait this long for more records before sending a batch.") var lingerMs = 5
    @Option(help: "Close a batch at this many bytes.") var batchBytes = 64 * 1024
    @Option(help: "Records read ahead of their acknowledgement at most (backpressure on stdin).") var maxUnacknowledged = 65_536
    @Flag(help: "Print 'PARTITION OFFSET' for every acknowledged record, in input order.") var printOffsets = false

    func validate() throws {
        guard let codec = CompressionCodec(name: compression), codec.isSupported else {
            throw ValidationError("--compression must be none, gzip or lz4 (got '\(compression)')")
        }
        guard ["0", "1", "all", "-1"].contains(acks) else { throw ValidationError("--acks must be 0, 1 or all (got '\(acks)')") }
        guard lingerMs >= 0 && lingerMs <= 60_000 else { throw ValidationError("--linger-ms must be 0...60000") }
        guard batchBytes >= 64 && batchBytes <= 16 << 20 else { throw ValidationError("--batch-bytes must be 64...16777216") }
        guard maxUnacknowledged >= 1 && maxUnacknowledged <= 10_000_000 else { throw ValidationError("--max-unacknowledged must be 1...10000000") }
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator cannot be empty") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
        _ = try parseHeaders()
    }

    func parseHeaders() throws -> [RecordHeader] {
        try headers.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--header takes key=value, got '\(item)'")
            }
            return RecordHeader(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
        }
    }

    func run() async throws {
        var config = ProducerConfig()
        config.compression = CompressionType(name: compression)!
        config.acks = ProducerAcks(name: acks)!
        config.lingerMillis = lingerMs
        config.batchBytes = batchBytes
        let recordHeaders = try parseHeaders()
        let separator = keySeparator.map { Array($0.utf8) }
        let failures = try await address.withConnection { connection -> Int in
            let producer = SpoolProducer(connection: connection, config: config)
            let window = AckWindow(limit: maxUnacknowledged)
            // Reports outcomes in input order as the front of the window completes.
            let reporter = Task { [printOffsets] () -> Int in
                var failures = 0
                var out: [UInt8] = []
                var line = 0
                while true {
                    let ready = await window.nextReady()
                    if ready.isEmpty { return failures }
                    for r in ready {
                        line += 1
                        switch r {
                        case .success(let m):
                            if printOffsets {
                                appendDecimal(Int64(m.partition), to: &out)
                                out.append(UInt8(ascii: " "))
                                appendDecimal(m.offset, to: &out)
                                out.append(0x0A)
                            }
                        case .failure(let error):
                            failures += 1
                            if !out.isEmpty { FileHandle.standardOutput.write(Data(out)); out.removeAll(keepingCapacity: true) }
                            FileHandle.standardError.write(Data("error: line \(line) not acknowledged: \(error)\n".utf8))
                        }
                    }
                    if !out.isEmpty {
                        FileHandle.standardOutput.write(Data(out))
                        out.removeAll(keepingCapacity: true)
                    }
                }
            }
            var reader = LineReader()
            do {
                while let line = try reader.next() {
                    var key: [UInt8]?
                    var value: [UInt8]
                    if let separator, let at = Self.find(separator, in: line) {
                        key = Array(line[line.startIndex..<at])
                        value = Array(line[(at + separator.count)...])
                    } else {
                        value = Array(line)
                    }
                    let index = await window.reserve()
                    // Sends in input order: records of one partition get increasing offsets.
                    do {
                        try await producer.send(topic: topic, partition: partition, key: key, value: value, headers: recordHeaders) { result in
                            window.complete(index, result)
                        }
                    } catch {
                        window.complete(index, .failure(error))
                        throw error
                    }
                }
                try await producer.flush()
            } catch {
                // Report what was acknowledged before the failure, then fail.
                try? await producer.flush()
                window.finish()
                _ = await reporter.value
                throw error
            }
            window.finish()
            return await reporter.value
        }
        if failures > 0 {
            throw CLIError("\(failures) record\(failures == 1 ? " was" : "s were") not acknowledged")
        }
    }

    /// Index of the first occurrence of `needle` in `haystack`.
    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}

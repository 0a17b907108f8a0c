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
            The first record that fails for good (after retries, within --delivery-timeout-ms) stops the run:
            no more input is read, the records already sent get their outcome, and the summary on stderr says
            how many lines were acknowledged and which was the first that was not. --keep-going sends every
            line anyway and reports each failure.
            With --transactional-id, every line is sent in one transaction, committed at the end of input once
            every record was acknowledged (read_committed consumers see them only then), and aborted if any failed.
            A producer started later with the same id fences this one and aborts its open transaction.
            """
    )

    @OptionGroup var address: BrokerAddress
    @Argument(help: "Topic to produce to.") var topic: String
    @Option(help: "Send every record to this partition (default: by key, or sticky round-robin).") var partition: Int32?
    @Option(help: "Split each line at the first occurrence of this string into key and value.") var keySeparator: String?
    @Option(name: .customLong("header"), help: "A header key=value added to every record (repeatable).") var headers: [String] = []
    @Option(help: "Codec: none, gzip, snappy, lz4 or zstd.") var compression = "lz4"
    @Option(help: "Acknowledgement: 0 (none), 1 (written) or all (fsynced).") var acks = "1"
    @Option(help: "Wait this long for more records before sending a batch.") var lingerMs = 5
    @Option(help: "Close a batch at this many bytes.") var batchBytes = 64 * 1024
    @Option(help: "Records read ahead of their acknowledgement at most (backpressure on stdin).") var maxUnacknowledged = 65_536
    @Flag(help: "Print 'PARTITION OFFSET' for every acknowledged record, in input order.") var printOffsets = false
    @Option(help: "A record not acknowledged this long after it was sent fails (retries included).") var deliveryTimeoutMs = 120_000
    @Flag(help: "Go on reading and sending after a record failed for good (default: stop at the first failure).") var keepGoing = false
    @Option(help: "Send all input in one transaction of this transactional id: committed at the end, aborted on error.") var transactionalId: String?
    @Option(help: "With --transactional-id: the broker aborts the transaction if it stays open this long.") var transactionTimeoutMs: Int32 = 60_000

    func validate() throws {
        guard CompressionCodec(name: compression) != nil else {
            throw ValidationError("--compression must be one of \(CompressionCodec.supportedNames) (got '\(compression)')")
        }
        guard ["0", "1", "all", "-1"].contains(acks) else { throw ValidationError("--acks must be 0, 1 or all (got '\(acks)')") }
        guard lingerMs >= 0 && lingerMs <= 60_000 else { throw ValidationError("--linger-ms must be 0...60000") }
        guard batchBytes >= 64 && batchBytes <= 16 << 20 else { throw ValidationError("--batch-bytes must be 64...16777216") }
        guard maxUnacknowledged >= 1 && maxUnacknowledged <= 10_000_000 else { throw ValidationError("--max-unacknowledged must be 1...10000000") }
        guard deliveryTimeoutMs >= 100 && deliveryTimeoutMs <= 86_400_000 else { throw ValidationError("--delivery-timeout-ms must be 100...86400000") }
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator cannot be empty") }
        if let partition, partition < 0 { throw ValidationError("--partition must be 0 or more") }
        if let transactionalId {
            if transactionalId.isEmpty { throw ValidationError("--transactional-id cannot be empty") }
            if keepGoing { throw ValidationError("--keep-going cannot be used with --transactional-id (a failed record aborts the transaction)") }
            if acks == "0" { throw ValidationError("--transactional-id needs --acks 1 or all") }
        }
        guard transactionTimeoutMs >= 1 && transactionTimeoutMs <= 900_000 else { throw ValidationError("--transaction-timeout-ms must be 1...900000") }
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

    /// What the reporter saw: lines acknowledged, lines failed, the first failed line (1-based).
    struct Tally: Sendable {
        var acknowledged = 0
        var failures = 0
        var firstFailedLine: Int?
        /// Input was left unread after the first failure.
        var stoppedEarly = false
    }

    func run() async throws {
        var config = ProducerConfig()
        config.compression = CompressionType(name: compression)!
        config.acks = ProducerAcks(name: acks)!
        config.lingerMillis = lingerMs
        config.batchBytes = batchBytes
        config.deliveryTimeoutMillis = deliveryTimeoutMs
        config.transactionalId = transactionalId
        config.transactionTimeoutMillis = transactionTimeoutMs
        let transactional = transactionalId != nil
        let recordHeaders = try parseHeaders()
        let separator = keySeparator.map { Array($0.utf8) }
        let stopAtFirstFailure = !keepGoing
        let tally = try await address.withRouter { router -> Tally in
            let producer = SpoolProducer(router: router, config: config)
            if transactional { try await producer.beginTransaction() }
            let window = AckWindow(limit: maxUnacknowledged, stopAtFirstFailure: stopAtFirstFailure)
            // Reports outcomes in input order as the front of the window completes.
            let reporter = Task { [printOffsets] () -> Tally in
                var tally = Tally()
                var out: [UInt8] = []
                var line = 0
                while true {
                    let ready = await window.nextReady()
                    if ready.isEmpty { return tally }
                    for r in ready {
                        line += 1
                        switch r {
                        case .success(let m):
                            tally.acknowledged += 1
                            if printOffsets {
                                appendDecimal(Int64(m.partition), to: &out)
                                out.append(UInt8(ascii: " "))
                                appendDecimal(m.offset, to: &out)
                                out.append(0x0A)
                            }
                        case .failure(let error):
                            tally.failures += 1
                            if tally.firstFailedLine == nil { tally.firstFailedLine = line }
                            // Stopping at the first failure: the later ones (a dead broker fails
                            // every record in flight) are counted in the summary, not printed.
                            guard !stopAtFirstFailure || tally.failures == 1 else { continue }
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
            var stoppedEarly = false
            do {
                while !window.isStopped, let line = try reader.next() {
                    var key: [UInt8]?
                    var value: [UInt8]
                    if let separator, let at = Self.find(separator, in: line) {
                        key = Array(line[line.startIndex..<at])
                        value = Array(line[(at + separator.count)...])
                    } else {
                        value = Array(line)
                    }
                    // Nil once a record failed for good: stop reading.
                    guard let index = await window.reserve() else { break }
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
                stoppedEarly = window.isStopped
                // The records sent get their outcome within the delivery timeout.
                try await producer.flush()
            } catch {
                // Report what was acknowledged before the failure, then fail.
                try? await producer.flush()
                if transactional { try? await producer.abortTransaction() }
                window.finish()
                _ = await reporter.value
                throw error
            }
            window.finish()
            var tally = await reporter.value
            tally.stoppedEarly = stoppedEarly
            if transactional {
                if tally.failures == 0 {
                    try await producer.commitTransaction()
                } else {
                    try? await producer.abortTransaction()
                }
            }
            return tally
        }
        if tally.failures > 0 {
            var summary = "\(tally.acknowledged) line\(tally.acknowledged == 1 ? "" : "s") acknowledged; "
            summary += "line \(tally.firstFailedLine ?? 0) was the first not acknowledged"
            if tally.failures > 1 { summary += " (\(tally.failures) lines failed in all)" }
            if tally.stoppedEarly { summary += "; stopped reading input after it (--keep-going sends every line)" }
            if transactionalId != nil { summary += "; the transaction was aborted: nothing was committed" }
            throw CLIError(summary)
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

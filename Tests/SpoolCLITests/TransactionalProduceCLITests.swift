import Foundation
import SpoolTestSupport
import Testing

/// `spool produce --transactional-id`: all input in one transaction, committed at the end,
/// aborted when a record fails; `spool consume --isolation` tells the two apart.
@Suite struct TransactionalProduceCLITests {
    static func values(_ broker: BrokerProcess, isolation: String) throws -> [String] {
        let r = try broker.spool(["consume", "t", "--from", "beginning", "--exit-at-end", "--isolation", isolation])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    @Test func inputIsCommittedAtTheEndAndAbortedWhenARecordFails() throws {
        let broker = try BrokerProcess()
        #expect(try broker.spool(["topic", "create", "t", "--partitions", "1", "--config", "max.message.bytes=300"]).status == 0)
        var r = try broker.spool(["produce", "t", "--transactional-id", "cli-1"], stdin: "a\nb\n")
        #expect(r.status == 0, "\(r.stderr)")
        // The third line is over max.message.bytes: the two before it are aborted with it.
        r = try broker.spool(["produce", "t", "--transactional-id", "cli-1", "--linger-ms", "0"],
                             stdin: "x\ny\n" + String(repeating: "z", count: 400) + "\n")
        #expect(r.status != 0)
        #expect(r.stderr.contains("the transaction was aborted"), "\(r.stderr)")
        #expect(try Self.values(broker, isolation: "read_committed") == ["a", "b"])
        #expect(try Self.values(broker, isolation: "read_uncommitted") == ["a", "b", "x", "y"])
    }
}

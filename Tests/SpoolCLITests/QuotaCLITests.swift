import Foundation
import SpoolTestSupport
import Testing

/// `spool quota set|list|remove` against a broker process (Kafka's AlterClientQuotas and
/// DescribeClientQuotas on its Kafka listener), and its refusals.
@Suite struct QuotaCLITests {
    @Test func quotasAreSetListedAndRemoved() throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let kafka = "127.0.0.1:\(try broker.kafkaPort())"
        var r = try runCommand("spool", ["quota", "set", "--kafka", kafka, "--client-id", "loadgen", "--producer-byte-rate", "1048576"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["quota", "set", "--kafka", kafka, "--default-user", "--consumer-byte-rate", "5000"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["quota", "list", "--kafka", kafka])
        #expect(r.stdout == "client-id=loadgen  producer_byte_rate=1048576\nuser=<default>  consumer_byte_rate=5000\n", "\(r.stderr)")
        r = try runCommand("spool", ["quota", "list", "--kafka", kafka, "--client-id", "loadgen", "--json"])
        #expect(r.stdout == #"[{"client-id":"loadgen","producer_byte_rate":1048576}]"# + "\n")
        r = try runCommand("spool", ["quota", "remove", "--kafka", kafka, "--client-id", "loadgen"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["quota", "list", "--kafka", kafka, "--client-id", "loadgen"])
        #expect(r.stdout == "no quotas\n")
        // The file in the data directory holds what is left.
        let stored = try String(contentsOfFile: broker.directory + "/client-quotas.meta", encoding: .utf8)
        #expect(stored == "spool-client-quotas v1\n*\t-\tconsumer_byte_rate=5000\n")
    }

    @Test func badArgumentsAndAnUnreachableBrokerFailWithAMessage() throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let kafka = "127.0.0.1:\(try broker.kafkaPort())"
        for (arguments, message) in [
            (["quota", "set", "--kafka", kafka, "--producer-byte-rate", "5"], "name an entity"),
            (["quota", "set", "--kafka", kafka, "--client-id", "c"], "--producer-byte-rate"),
            (["quota", "set", "--kafka", kafka, "--client-id", "c", "--default-client", "--producer-byte-rate", "5"], "not both"),
            (["quota", "set", "--kafka", kafka, "--client-id", "c", "--producer-byte-rate", "0"], "positive"),
            (["quota", "list", "--kafka", "nowhere"], "HOST:PORT"),
            (["quota", "list", "--kafka", "127.0.0.1:1"], "cannot connect"),
        ] {
            let r = try runCommand("spool", arguments)
            #expect(r.status != 0, "\(arguments)")
            #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
    }
}

/// `spool acl add|list|remove` against a broker process.
@Suite struct AclCLITests {
    @Test func aclsAreAddedListedAndRemoved() throws {
        let broker = try BrokerProcess()
        defer { _ = broker.terminate() }
        let kafka = "127.0.0.1:\(try broker.kafkaPort())"
        var r = try runCommand("spool", ["acl", "add", "--kafka", kafka, "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "orders"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "added: ALLOW User:alice from * read on topic literal orders\nadded: ALLOW User:alice from * describe on topic literal orders\n")
        r = try runCommand("spool", ["acl", "add", "--kafka", kafka, "--deny-principal", "User:mallory", "--operation", "All", "--topic", "raw.", "--resource-pattern-type", "prefixed"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try runCommand("spool", ["acl", "list", "--kafka", kafka, "--topic", "raw.x", "--resource-pattern-type", "match"])
        #expect(r.stdout == "DENY User:mallory from * all on topic prefixed raw.\n", "\(r.stderr)")
        r = try runCommand("spool", ["acl", "remove", "--kafka", kafka, "--allow-principal", "User:alice"])
        #expect(r.status == 0 && r.stdout.components(separatedBy: "removed:").count == 3, "\(r.stdout)\(r.stderr)")
        r = try runCommand("spool", ["acl", "list", "--kafka", kafka])
        #expect(r.stdout == "DENY User:mallory from * all on topic prefixed raw.\n")
        for (arguments, message) in [
            (["acl", "add", "--kafka", kafka, "--operation", "Read", "--topic", "t"], "--allow-principal"),
            (["acl", "add", "--kafka", kafka, "--allow-principal", "User:a", "--operation", "Fly", "--topic", "t"], "unknown --operation"),
            (["acl", "add", "--kafka", kafka, "--allow-principal", "alice", "--operation", "Read", "--topic", "t"], "TYPE:NAME"),
            (["acl", "add", "--kafka", kafka, "--allow-principal", "User:a", "--operation", "Read", "--topic", "t", "--group", "g"], "name one resource"),
            (["acl", "remove", "--kafka", kafka], "explicit filter"),
        ] {
            let r = try runCommand("spool", arguments)
            #expect(r.status != 0, "\(arguments)")
            #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
    }
}

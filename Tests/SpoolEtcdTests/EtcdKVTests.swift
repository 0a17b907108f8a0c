import Foundation
@testable import SpoolEtcd
import SpoolTestSupport
import Testing

// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct EtcdKVTests {
    @Test func putRangePrefixAndDelete() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            #expect(try await client.get("/t/a") == nil)
            let first = try await client.put("/t/a", [UInt8](text: "one"))
            let second = try await client.put("/t/b", [UInt8](text: "two"))
            _ = try await client.put("/u/c", [UInt8](text: "other"))
            #expect(second.revision == first.revision + 1)

            let a = try #require(try await client.get("/t/a"))
            #expect(a.valueString == "one")
            #expect(a.createRevision == first.revision && a.modRevision == first.revision && a.version == 1)

            let prefix = try await client.range(.prefix("/t/"))
            #expect(prefix.kvs.map(\.key) == ["/t/a", "/t/b"])
            #expect(prefix.count == 2 && prefix.revision >= second.revision + 1)
            let limited = try await client.range(.prefix("/t/"), limit: 1)
            #expect(limited.kvs.count == 1 && limited.more)

            // Reading at an older revision sees the older value.
            let overwrite = try await client.put("/t/a", [UInt8](text: "uno"), previous: true)
            #expect(overwrite.previous?.valueString == "one")
            #expect(try await client.range(.key("/t/a"), revision: first.revision).kvs.first?.valueString == "one")

            let deleted = try await client.delete(.prefix("/t/"), previous: true)
            #expect(deleted.deleted == 2)
            #expect(Set(deleted.previous.map(\.valueString)) == ["uno", "two"])
            #expect(try await client.range(.prefix("/t/")).kvs.isEmpty)
            #expect(try await client.get("/u/c")?.valueString == "other")

            // Binary values round-trip through base64.
            let bytes: [UInt8] = (0...255).map { UInt8($0) }
            _ = try await client.put("/bin", bytes)
            #expect(try await client.get("/bin")?.value == bytes)
        }
    }

    @Test func txnCompareAndSwapConflictAndSuccess() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let key = "/cas/k"
            // Create if absent: the first wins, the second sees the first's value.
            let create = try await client.txn(
                compare: [.createRevision(key, .equal, 0)], success: [.put(key, [UInt8](text: "v1"))], failure: [.range(.key(key))])
            #expect(create.succeeded)
            let again = try await client.txn(
                compare: [.createRevision(key, .equal, 0)], success: [.put(key, [UInt8](text: "other"))], failure: [.range(.key(key))])
            #expect(!again.succeeded)
            #expect(again.firstRangeKeyValue?.valueString == "v1")
            #expect(throws: EtcdError.self) { try again.requireSucceeded() }
            do { try again.requireSucceeded() } catch let error as EtcdError { #expect(error.code == .txnFailed) }

            // CAS on mod revision: the writer that read revision r wins once; a stale one conflicts.
            let read = try #require(try await client.get(key))
            let swap = try await client.txn(
                compare: [.modRevision(key, .equal, read.modRevision)], success: [.put(key, [UInt8](text: "v2"))],
                failure: [.range(.key(key))])
            #expect(swap.succeeded)
            guard case .put(let put) = swap.responses.first else { Issue.record("no put answer"); return }
            #expect(put.revision == swap.revision)
            let stale = try await client.txn(
                compare: [.modRevision(key, .equal, read.modRevision)], success: [.put(key, [UInt8](text: "v3"))],
                failure: [.range(.key(key))])
            #expect(!stale.succeeded)
            #expect(stale.firstRangeKeyValue?.valueString == "v2")
            #expect(stale.firstRangeKeyValue?.modRevision == swap.revision)
            #expect(try await client.get(key)?.valueString == "v2")

            // Value and version compares, and a delete in the success branch.
            let byValue = try await client.txn(
                compare: [.value(key, .equal, [UInt8](text: "v2")), .version(key, .equal, 2)], success: [.delete(.key(key))])
            #expect(byValue.succeeded)
            #expect(try await client.get(key) == nil)
        }
    }

    @Test func aMissingEndpointFailsWithUnavailableWithinTheDeadline() async throws {
        let port = try EtcdCluster.freePorts(1)[0] // nobody listens there
        var configuration = try EtcdClientConfiguration(endpoints: "http://127.0.0.1:\(port)")
        configuration.requestTimeout = .milliseconds(500)
        let client = try EtcdClient(configuration: configuration)
        defer { client.shutdown() }
        let started = ContinuousClock.now
        do {
            _ = try await client.get("/x")
            Issue.record("a call to nobody succeeded")
        } catch let error as EtcdError {
            #expect(error.code == .unavailable)
        }
        #expect(seconds(ContinuousClock.now - started) < 10)
    }

    @Test func endpointsAndPrefixesParse() throws {
        let list = try EtcdEndpoint.list("http://127.0.0.1:2379, http://127.0.0.1:12379/")
        #expect(list == [EtcdEndpoint(host: "127.0.0.1", port: 2379), EtcdEndpoint(host: "127.0.0.1", port: 12379)])
        for bad in ["", "127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1", "http://:2379", "http://h:0"] {
            #expect(throws: EtcdError.self) { _ = try EtcdEndpoint.list(bad) }
        }
        #expect(EtcdKeyRange.prefixEnd(Array("/a/".utf8)) == Array("/a0".utf8))
        #expect(EtcdKeyRange.prefixEnd([0x61, 0xff]) == [0x62])
        #expect(EtcdKeyRange.prefixEnd([0xff, 0xff]) == [0])
    }
}

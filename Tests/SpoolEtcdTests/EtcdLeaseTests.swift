import Foundation
import SpoolEtcd
import SpoolTestSupport
import Testing

// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct EtcdLeaseTests {
    @Test func keepAliveHoldsAKeyAndItGoesAboutATTLAfterKeepalivesStop() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let ttl: Int64 = 3
            let lease = try await client.leaseGrant(ttlSeconds: ttl)
            #expect(lease.ttlSeconds == ttl)
            _ = try await client.put("/lease/k", [UInt8](text: "alive"), lease: lease.id)
            #expect(try await client.get("/lease/k")?.lease == lease.id)

            // Renew for twice the TTL: the key stays.
            var lastKeepAlive = ContinuousClock.now
            for _ in 0..<10 {
                try await Task.sleep(for: .milliseconds(500))
                lastKeepAlive = ContinuousClock.now
                #expect(try await client.leaseKeepAliveOnce(lease.id) == ttl)
            }
            #expect(try await client.get("/lease/k") != nil)

            // Stop renewing: gone after about the TTL (never before it, at the latest a few s after).
            var goneAfter: Double?
            let found = try await eventually(within: Double(ttl) + 10) {
                let gone = try await client.get("/lease/k") == nil
                if gone { goneAfter = seconds(ContinuousClock.now - lastKeepAlive) }
                return gone
            }
            #expect(found)
            let after = try #require(goneAfter)
            print("lease of \(ttl) s: key gone \(after) s after the last keepalive")
            #expect(after >= Double(ttl) - 0.2)

            do {
                _ = try await client.leaseKeepAliveOnce(lease.id)
                Issue.record("keepalive of an expired lease succeeded")
            } catch let error as EtcdError {
                #expect(error.code == .leaseNotFound)
            }
        }
    }

    @Test func revokeDeletesTheKeysAndAPutUnderAGoneLeaseFails() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let lease = try await client.leaseGrant(ttlSeconds: 30)
            _ = try await client.put("/lease/a", [UInt8](text: "1"), lease: lease.id)
            _ = try await client.put("/lease/b", [UInt8](text: "2"), lease: lease.id)
            try await client.leaseRevoke(lease.id)
            #expect(try await client.range(.prefix("/lease/")).kvs.isEmpty)
            for attempt in 0..<3 {
                do {
                    switch attempt {
                    case 0: try await client.leaseRevoke(lease.id)
                    case 1: _ = try await client.put("/lease/c", [UInt8](text: "3"), lease: lease.id)
                    default:
                        _ = try await client.txn(compare: [], success: [.put("/lease/c", [UInt8](text: "3"), lease: lease.id)])
                    }
                    Issue.record("attempt \(attempt) under a revoked lease succeeded")
                } catch let error as EtcdError {
                    #expect(error.code == .leaseNotFound, "attempt \(attempt): \(error)")
                }
            }
        }
    }
}

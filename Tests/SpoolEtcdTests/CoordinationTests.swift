import Foundation
import SpoolCoordination
import SpoolEtcd
import SpoolTestSupport
import Testing

// The limit includes the wait for withEtcdCluster's one-cluster-at-a-time gate (minutes behind other suites).
@Suite(.serialized, .timeLimit(.minutes(8))) struct CoordinationTests {
    let keys = try! ClusterKeys(clusterId: "test-cluster")

    func fastRegistration(ttl: Int64 = 3) -> BrokerRegistration.Configuration {
        var configuration = BrokerRegistration.Configuration()
        configuration.ttlSeconds = ttl
        configuration.keepAliveInterval = .milliseconds(500)
        configuration.retryInterval = .milliseconds(200)
        return configuration
    }

    @Test func keyLayout() throws {
        #expect(keys.broker(3) == "/spool/test-cluster/brokers/3")
        #expect(keys.controller == "/spool/test-cluster/controller")
        #expect(try keys.partitionState(topic: "orders", partition: 7) == "/spool/test-cluster/topics/orders/partitions/7/state")
        for bad in ["", "a/b", "..", "a b"] { #expect(throws: EtcdError.self) { _ = try ClusterKeys(clusterId: bad) } }
        #expect(throws: EtcdError.self) { _ = try keys.partitionState(topic: "a/b", partition: 0) }
        #expect(throws: EtcdError.self) { _ = try keys.partitionState(topic: "t", partition: -1) }
    }

    @Test func registrationPublishesTheRecordAndRevokesOnShutdown() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let record = BrokerRecord(nodeId: 4, nativeAddress: "127.0.0.1:7001", kafkaAddress: "127.0.0.1:9001")
            let registration = BrokerRegistration(client: client, keys: keys, record: record, configuration: fastRegistration())
            let task = Task { await registration.run() }
            guard case .registered(let first)? = await next(registration.events, within: 10) else {
                task.cancel(); Issue.record("not registered"); return
            }
            let kv = try #require(try await client.get(keys.broker(4)))
            #expect(kv.lease == first.leaseId && kv.modRevision == first.epoch)
            #expect(try JSONDecoder().decode(BrokerRecord.self, from: Data(kv.value)) == record)
            // Renewals keep it past several TTLs.
            try await Task.sleep(for: .seconds(5))
            #expect(try await client.get(keys.broker(4))?.lease == first.leaseId)
            #expect(registration.current == first)
            task.cancel()
            await task.value
            #expect(try await client.get(keys.broker(4)) == nil)
        }
    }

    @Test func registrationLossIsReportedWhenEtcdLosesQuorumAndRegainedAfter() async throws {
        try await withEtcdCluster(members: 3) { etcd in
            let client = try makeClient(etcd, requestTimeout: .seconds(4), attemptTimeout: .seconds(2))
            defer { client.shutdown() }
            let registration = BrokerRegistration(
                client: client, keys: keys, record: BrokerRecord(nodeId: 1, nativeAddress: "a:1", kafkaAddress: "a:2"),
                configuration: fastRegistration())
            let task = Task { await registration.run() }
            defer { task.cancel() }
            guard case .registered(let first)? = await next(registration.events, within: 10) else {
                Issue.record("not registered"); return
            }
            await etcd.kill(1)
            await etcd.kill(2)
            let killed = ContinuousClock.now
            guard case .lost(let lost, let reason)? = await next(registration.events, within: 15) else {
                Issue.record("no loss reported with quorum gone"); return
            }
            print("registration lost \(seconds(ContinuousClock.now - killed)) s after quorum loss (TTL 3 s): \(reason)")
            #expect(lost == first)
            #expect(reason == .keepAliveExpired)
            #expect(registration.current == nil)

            try await etcd.restart(1)
            try await etcd.restart(2)
            guard case .registered(let again)? = await next(registration.events, within: 30) else {
                Issue.record("not registered again after quorum came back"); return
            }
            #expect(again.leaseId != first.leaseId)
            #expect(again.epoch > first.epoch)
            #expect(try await client.get(keys.broker(1))?.lease == again.leaseId)
        }
    }

    @Test func contendersCampaigningTogetherElectExactlyOne() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let count: Int32 = 4
            var elections: [ControllerElection] = []
            var tasks: [Task<Void, any Error>] = []
            for node in 1...count {
                let lease = try await client.leaseGrant(ttlSeconds: 30)
                let election = ControllerElection(client: client, keys: keys, nodeId: node)
                elections.append(election)
                tasks.append(Task { try await election.run(leaseId: lease.id) })
            }
            defer { for task in tasks { task.cancel() } }
            var firsts: [ControllerElection.Event] = []
            for election in elections {
                if let event = await next(election.events, within: 10) { firsts.append(event) }
            }
            #expect(firsts.count == Int(count))
            let winners = firsts.compactMap { if case .elected(let c) = $0 { c } else { nil } }
            let seen = firsts.compactMap { if case .following(let c) = $0 { c } else { nil } }
            #expect(winners.count == 1)
            #expect(seen.count == Int(count) - 1 && seen.allSatisfy { $0 == winners.first })
            #expect(try await elections[0].currentController() == winners.first)
        }
    }

    @Test func oneOfTwoContendersWinsAndTheOtherTakesOverWhenTheWinnersLeaseLapses() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            // Contender 1 holds a lease nobody renews (a broker that stopped); contender 2 renews its own.
            let lapsing = try await client.leaseGrant(ttlSeconds: 3)
            let alive = try await client.leaseGrant(ttlSeconds: 30)
            let one = ControllerElection(client: client, keys: keys, nodeId: 1)
            let two = ControllerElection(client: client, keys: keys, nodeId: 2)
            let oneEnded = Flag()
            let oneTask = Task { defer { oneEnded.set() }; try await one.run(leaseId: lapsing.id) }
            guard case .elected(let firstController)? = await next(one.events, within: 10) else {
                Issue.record("contender 1 was not elected"); return
            }
            let twoTask = Task { try await two.run(leaseId: alive.id) }
            defer { oneTask.cancel(); twoTask.cancel() }
            guard case .following(let seen)? = await next(two.events, within: 10) else {
                Issue.record("contender 2 did not follow"); return
            }
            #expect(seen == firstController)
            #expect(one.isController && !two.isController)
            #expect(try await one.currentController() == firstController)

            // Contender 1's lease lapses: its key goes, contender 2 campaigns and wins.
            let renewer = Task {
                while !Task.isCancelled {
                    _ = try? await client.leaseKeepAliveOnce(alive.id)
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            defer { renewer.cancel() }
            guard case .elected(let secondController)? = await next(two.events, within: 15) else {
                Issue.record("contender 2 did not take over"); return
            }
            #expect(secondController.nodeId == 2)
            #expect(secondController.epoch > firstController.epoch)
            guard case .deposed(let gone)? = await next(one.events, within: 10) else {
                Issue.record("contender 1 did not hear it was deposed"); return
            }
            #expect(gone == firstController)
            // Contender 1 campaigns again under its expired lease: it loses (the txn's put fails
            // with leaseNotFound, or the compare fails because contender 2 already won).
            #expect(!one.isController)
            #expect(try await eventually(within: 10) { !one.isController && (one.latest == .following(secondController) || oneEnded.isSet) })
            #expect(try await two.currentController() == secondController)

            // The controller resigns: the key goes, and it campaigns again under its lease.
            #expect(try await two.resign(epoch: secondController.epoch))
            let reelected = await next(two.events, within: 10)
            #expect(reelected == .deposed(secondController))
            guard case .elected(let third)? = await next(two.events, within: 10) else {
                Issue.record("no re-election after resigning"); return
            }
            #expect(third.epoch > secondController.epoch)
        }
    }

    @Test func theOtherContenderTakesOverWhenTheControllersProcessIsKilled() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            // Contender 1's lease is renewed by a separate process (etcdctl lease keep-alive): kill -9 it.
            let lease = try await client.leaseGrant(ttlSeconds: 3)
            let keeper = Process()
            keeper.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
            keeper.arguments = ["--endpoints", etcd.endpoints, "lease", "keep-alive", String(lease.id, radix: 16)]
            keeper.environment = ["ETCDCTL_API": "3"]
            keeper.standardOutput = FileHandle.nullDevice
            keeper.standardError = FileHandle.nullDevice
            try keeper.run()
            defer { if keeper.isRunning { kill(keeper.processIdentifier, SIGKILL); keeper.waitUntilExit() } }
            let one = ControllerElection(client: client, keys: keys, nodeId: 1)
            let oneTask = Task { try await one.run(leaseId: lease.id) }
            guard case .elected(let first)? = await next(one.events, within: 10) else {
                oneTask.cancel(); Issue.record("not elected"); return
            }
            let other = try await client.leaseGrant(ttlSeconds: 60)
            let two = ControllerElection(client: client, keys: keys, nodeId: 2)
            let twoTask = Task { try await two.run(leaseId: other.id) }
            defer { oneTask.cancel(); twoTask.cancel() }
            #expect(await next(two.events, within: 10) == .following(first))
            // Still controller after several TTLs: the keeper renews.
            try await Task.sleep(for: .seconds(4))
            #expect(try await two.currentController() == first)

            kill(keeper.processIdentifier, SIGKILL)
            keeper.waitUntilExit()
            let killed = ContinuousClock.now
            guard case .elected(let second)? = await next(two.events, within: 15) else {
                Issue.record("no take-over after the controller's keeper was killed"); return
            }
            print("controller moved \(seconds(ContinuousClock.now - killed)) s after kill -9 (TTL 3 s)")
            #expect(second.nodeId == 2 && second.epoch > first.epoch)
        }
    }

    @Test func partitionStateChangesOnlyByCompareAndSwap() async throws {
        try await withEtcdCluster(members: 1) { etcd in
            let client = try makeClient(etcd)
            defer { client.shutdown() }
            let store = PartitionStateStore(client: client, keys: keys)
            #expect(try await store.read(topic: "t", partition: 0) == nil)
            let initial = PartitionState(leader: 1, leaderEpoch: 0, isr: [1, 2, 3], partitionEpoch: 0)
            guard case .success(let created) = try await store.create(topic: "t", partition: 0, state: initial) else {
                Issue.record("create failed"); return
            }
            // A second create conflicts and shows what is there.
            let other = PartitionState(leader: 2, leaderEpoch: 0, isr: [2], partitionEpoch: 0)
            #expect(try await store.create(topic: "t", partition: 0, state: other)
                == .conflict(current: VersionedPartitionState(state: initial, modRevision: created)))

            // Two writers read the same revision: the ISR shrink wins, the leader change conflicts.
            let read = try #require(try await store.read(topic: "t", partition: 0))
            #expect(read == VersionedPartitionState(state: initial, modRevision: created))
            let shrink = PartitionState(leader: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 1)
            let change = PartitionState(leader: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1)
            guard case .success(let shrunk) = try await store.compareAndSwap(
                topic: "t", partition: 0, expectedModRevision: read.modRevision, state: shrink) else {
                Issue.record("CAS from the current revision failed"); return
            }
            #expect(shrunk > created)
            #expect(try await store.compareAndSwap(topic: "t", partition: 0, expectedModRevision: read.modRevision, state: change)
                == .conflict(current: VersionedPartitionState(state: shrink, modRevision: shrunk)))
            // Re-decided from the winner's record, it goes through.
            let redone = PartitionState(leader: 2, leaderEpoch: 1, isr: [2], partitionEpoch: 2)
            guard case .success = try await store.compareAndSwap(topic: "t", partition: 0, expectedModRevision: shrunk, state: redone) else {
                Issue.record("CAS from the winner's revision failed"); return
            }
            _ = try await store.create(topic: "t", partition: 1, state: initial)
            let all = try await store.readAll(topic: "t")
            #expect(all.mapValues(\.state) == [0: redone, 1: initial])
            // A negative epoch is refused before it reaches etcd.
            await #expect(throws: EtcdError.self) {
                _ = try await store.create(topic: "t", partition: 2, state: PartitionState(leader: 1, leaderEpoch: -1, isr: [1], partitionEpoch: 0))
            }
        }
    }
}

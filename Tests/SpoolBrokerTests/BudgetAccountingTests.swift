import SpoolBroker
import Testing

@Suite struct BudgetAccountingTests {
    @Test func theDescriptorBudgetIsSplitWithinTheProcessLimit() {
        let split = DescriptorBudget(limit: 20_000, reserve: 64, cache: 1024, maxConnections: nil)
        #expect(split.available == 20_000 - 64 - 1024)
        #expect(split.maxConnections == split.available / 4)
        #expect(split.maxConnections * DescriptorBudget.descriptorsPerConnection + split.sharedSpanDescriptors == split.available)
        // Asking for more connections than the budget holds is clamped to half of it.
        let greedy = DescriptorBudget(limit: 2000, reserve: 64, cache: 936, maxConnections: 100_000)
        #expect(greedy.maxConnections == 500 && greedy.sharedSpanDescriptors == 0)
        // With the common soft limit of 1024 the cache gives up half, not every descriptor.
        let cache = DescriptorBudget.cacheSize(1024, limit: 1024, reserve: 64)
        #expect(cache == 480)
        #expect(DescriptorBudget(limit: 1024, reserve: 64, cache: cache, maxConnections: nil).maxConnections == 120)
    }

    @Test func connectionsBorrowSpanDescriptorsAndGiveThemBack() {
        var config = BudgetConfig()
        config.spanDescriptorsPerConnectionMax = 3
        let budgets = ResourceBudgets(config: config, descriptors: DescriptorBudget(limit: 64 + 16 + 2, reserve: 64, cache: 2, maxConnections: 4))
        #expect(budgets.descriptors.maxConnections == 4 && budgets.descriptors.sharedSpanDescriptors == 8)
        let connections = (0..<4).compactMap { _ in budgets.admitConnection() }
        #expect(connections.count == 4 && budgets.admitConnection() == nil && budgets.snapshot.connectionsRefused == 1)
        // Each takes its guaranteed one and two more from the pool: 8 borrowed in all.
        for c in connections { for _ in 0..<3 { #expect(c.acquireSpanDescriptor()) } }
        #expect(budgets.snapshot.sharedSpanDescriptorsInUse == 8)
        #expect(!connections[0].acquireSpanDescriptor(), "at its per-connection limit")
        connections[0].releaseSpanDescriptor()
        #expect(budgets.snapshot.sharedSpanDescriptorsInUse == 7)
        // Closing gives back the slot and what it borrowed; late releases are ignored.
        connections[1].close()
        connections[1].releaseSpanDescriptor()
        #expect(budgets.snapshot.sharedSpanDescriptorsInUse == 5 && budgets.snapshot.connections == 3)
        #expect(budgets.admitConnection() != nil)
    }

    @Test func unfinishedFramesReserveTheSharedInboundBudget() {
        var config = BudgetConfig()
        config.inboundBufferedBytesMax = 1 << 20
        config.inboundFrameBytesGuaranteed = 1024
        let budgets = ResourceBudgets(config: config, descriptors: DescriptorBudget(limit: 1000, reserve: 64, cache: 100, maxConnections: 10))
        let a = budgets.admitConnection()!, b = budgets.admitConnection()!, c = budgets.admitConnection()!
        #expect(a.reserveInbound(600 << 10))
        #expect(!b.reserveInbound(600 << 10), "over the shared budget")
        #expect(c.reserveInbound(1000), "small frames need no shared room")
        #expect(budgets.snapshot.inboundBufferedBytes == 600 << 10)
        a.releaseInbound()
        #expect(b.reserveInbound(600 << 10))
        b.close()
        #expect(budgets.snapshot.inboundBufferedBytes == 0)
    }
}

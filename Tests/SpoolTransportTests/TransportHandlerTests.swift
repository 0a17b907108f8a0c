import NIOCore
import NIOEmbedded
import SpoolBroker
import SpoolTransport
import Testing

/// The shared transport on an `EmbeddedChannel` (manual time): reads held over the
/// outbound budget and for a protocol's reason, resumed when written / released; an
/// announced frame that does not complete drops its sender at the deadline, except while
/// the broker itself holds the reads. (Both listeners' socket tests cover span writing.)
@Suite struct TransportHandlerTests {
    /// Counts the `read`s that reach the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = IOData
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Keeps the transport's events to the protocol handler.
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var events: [TransportEvent] = []
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let e = event as? TransportEvent { events.append(e) }
        }
    }

    struct Harness {
        let budgets: ResourceBudgets
        let budget: ConnectionBudget
        let counter = ReadCounter()
        let recorder = EventRecorder()
        let channel: EmbeddedChannel

        init(_ configure: (inout BudgetConfig) -> Void = { _ in }) throws {
            var config = BudgetConfig()
            config.maxConnections = 4
            configure(&config)
            budgets = ResourceBudgets(config: config, descriptors: DescriptorBudget(limit: 1024, reserve: 64, cache: 64, maxConnections: 4))
            budget = budgets.admitConnection()!
            channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(counter)
            try channel.pipeline.syncOperations.addHandler(TransportHandler(budget: budget))
            try channel.pipeline.syncOperations.addHandler(recorder)
        }
    }

    @Test func readsAreHeldOverTheOutboundBudgetAndForAProtocolsReason() throws {
        let h = try Harness { $0.outboundBytesPerConnectionMax = 100 }
        h.channel.read()
        #expect(h.counter.reads == 1)

        // 200 bytes queued, not written yet: over the budget, the next read is held.
        let written = h.channel.eventLoop.makePromise(of: Void.self)
        h.channel.write(Transmission(ByteBuffer(repeating: 1, count: 200)), promise: written)
        #expect(h.budget.outboundBytes == 200)
        h.channel.read()
        #expect(h.counter.reads == 1, "held while 200 bytes are queued over a budget of 100")
        #expect(h.budgets.snapshot.readsPaused == 1)

        // Written: the ledger is back to zero, reading resumes once the burst is done.
        h.channel.flush()
        try written.futureResult.wait()
        #expect(h.budget.outboundBytes == 0)
        h.channel.embeddedEventLoop.run()
        #expect(h.counter.reads == 2)
        #expect(h.recorder.events == [.writesCompleted(spansClosed: false)])
        #expect(try h.channel.readOutbound(as: IOData.self) == .byteBuffer(ByteBuffer(repeating: 1, count: 200)))

        // A protocol's reason holds reads until it is released.
        h.channel.pipeline.triggerUserOutboundEvent(ReadHold.Change(.requestsInFlight, held: true), promise: nil)
        h.channel.read()
        #expect(h.counter.reads == 2)
        h.channel.pipeline.triggerUserOutboundEvent(ReadHold.Change(.requestsInFlight, held: false), promise: nil)
        #expect(h.counter.reads == 3)
        #expect(h.budgets.snapshot.readsPaused == 2)
    }

    @Test func anUnfinishedFrameDropsItsSenderAtTheDeadline() throws {
        let h = try Harness { $0.frameCompletionSeconds = 5 }
        #expect(h.budget.reserveInbound(1 << 20))
        h.channel.pipeline.fireUserInboundEventTriggered(FrameProgress.started(bytes: 1 << 20))
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(h.recorder.events.isEmpty)
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(h.recorder.events == [.frameTimedOut(bytes: 1 << 20, seconds: 5)])
        #expect(h.budgets.snapshot.slowSendersDropped == 1)
    }

    @Test func aFrameCompletedInTimeOrHeldUpByTheBrokerIsNotDropped() throws {
        let h = try Harness { $0.frameCompletionSeconds = 5 }
        #expect(h.budget.reserveInbound(1 << 20))
        h.channel.pipeline.fireUserInboundEventTriggered(FrameProgress.started(bytes: 1 << 20))
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        h.channel.pipeline.fireUserInboundEventTriggered(FrameProgress.completed)
        h.budget.releaseInbound()
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(h.recorder.events.isEmpty)

        // The broker holds the reads: the deadline starts over instead of dropping the sender.
        #expect(h.budget.reserveInbound(1 << 20))
        h.channel.pipeline.fireUserInboundEventTriggered(FrameProgress.started(bytes: 1 << 20))
        h.channel.pipeline.triggerUserOutboundEvent(ReadHold.Change(.answersWaiting, held: true), promise: nil)
        h.channel.read()
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(12))
        #expect(h.recorder.events.isEmpty)
        h.channel.pipeline.triggerUserOutboundEvent(ReadHold.Change(.answersWaiting, held: false), promise: nil)
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(h.recorder.events == [.frameTimedOut(bytes: 1 << 20, seconds: 5)])
    }
}

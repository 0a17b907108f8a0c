import NIOConcurrencyHelpers

/// The broker-wide budgets every listener draws from: connections, span descriptors and
/// bytes buffered for unfinished inbound frames. A listener asks for a `ConnectionBudget`
/// when it accepts a connection (nil: over `max.connections`, refuse it) and charges the
/// connection's use to it; the connection gives everything back when it closes.
///
/// ```swift
/// guard let budget = broker.budgets.admitConnection() else { return refuse(channel) }
/// channel.closeFuture.whenComplete { _ in budget.close() }
/// ```
public final class ResourceBudgets: Sendable {
    public let config: BudgetConfig
    /// How the process's descriptors are split.
    public let descriptors: DescriptorBudget

    struct State {
        var connections = 0
        var sharedSpansInUse = 0
        var inboundBytes = 0
        var counters = BudgetCounters()
    }

    let state = NIOLockedValueBox(State())

    public init(config: BudgetConfig, descriptors: DescriptorBudget) {
        self.config = config
        self.descriptors = descriptors
    }

    /// Budgets derived from this process's descriptor limit and the storage cache size.
    public convenience init(config: BudgetConfig, descriptorCacheSize: Int) {
        self.init(config: config, descriptors: DescriptorBudget(
            limit: DescriptorBudget.processLimit(), reserve: config.descriptorReserve,
            cache: descriptorCacheSize, maxConnections: config.maxConnections))
    }

    /// Admits one more connection, or returns nil (and counts a refusal) at `maxConnections`.
    public func admitConnection() -> ConnectionBudget? {
        let admitted = state.withLockedValue { s -> Bool in
            guard s.connections < descriptors.maxConnections else {
                s.counters.connectionsRefused += 1
                return false
            }
            s.connections += 1
            return true
        }
        return admitted ? ConnectionBudget(budgets: self) : nil
    }

    /// What the budgets hold now, and how often clients ran into them.
    public var snapshot: BudgetCounters {
        state.withLockedValue { s in
            var c = s.counters
            c.connections = s.connections
            c.sharedSpanDescriptorsInUse = s.sharedSpansInUse
            c.inboundBufferedBytes = s.inboundBytes
            return c
        }
    }

    /// Counts one event against a client (a listener's refusal or drop).
    public func count(_ event: BudgetEvent) {
        state.withLockedValue { s in
            switch event {
            case .readsPaused: s.counters.readsPaused += 1
            case .framesRefused: s.counters.framesRefused += 1
            case .slowSendersDropped: s.counters.slowSendersDropped += 1
            case .responsesDeferred: s.counters.responsesDeferred += 1
            }
        }
    }

    // MARK: Used by ConnectionBudget

    func takeSharedSpan() -> Bool {
        state.withLockedValue { s in
            guard s.sharedSpansInUse < descriptors.sharedSpanDescriptors else { return false }
            s.sharedSpansInUse += 1
            return true
        }
    }

    func returnSharedSpans(_ n: Int) {
        guard n > 0 else { return }
        state.withLockedValue { s in
            s.sharedSpansInUse -= n
            assert(s.sharedSpansInUse >= 0, "more shared span descriptors returned than taken")
        }
    }

    func reserveInbound(_ bytes: Int) -> Bool {
        state.withLockedValue { s in
            guard s.inboundBytes + bytes <= config.inboundBufferedBytesMax else {
                s.counters.framesRefused += 1
                return false
            }
            s.inboundBytes += bytes
            return true
        }
    }

    func releaseInbound(_ bytes: Int) {
        guard bytes > 0 else { return }
        state.withLockedValue { s in
            s.inboundBytes -= bytes
            assert(s.inboundBytes >= 0, "more inbound bytes released than reserved")
        }
    }

    func releaseConnection() {
        state.withLockedValue { s in
            s.connections -= 1
            assert(s.connections >= 0, "more connections released than admitted")
        }
    }
}

/// Events a listener counts when a client runs into a budget.
public enum BudgetEvent: Sendable {
    /// A connection's requests stopped being read (unwritable or over its outbound budget).
    case readsPaused
    /// A frame was refused: the inbound budget had no room for it.
    case framesRefused
    /// A connection that did not finish a frame in time was dropped.
    case slowSendersDropped
    /// A response waited for a span descriptor of its connection.
    case responsesDeferred
}

/// The budgets' current use and how often they were hit (for tests, logs and metrics).
public struct BudgetCounters: Sendable, Hashable {
    public var connections = 0
    public var sharedSpanDescriptorsInUse = 0
    public var inboundBufferedBytes = 0
    public var connectionsRefused = 0
    public var readsPaused = 0
    public var framesRefused = 0
    public var slowSendersDropped = 0
    public var responsesDeferred = 0
}

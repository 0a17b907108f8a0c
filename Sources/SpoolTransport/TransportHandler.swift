import NIOCore
import SpoolBroker

#if canImport(Glibc)
import Glibc
#endif

/// The connection discipline both protocol listeners share, as one channel handler
/// between the frame decoder and the protocol handler:
///
/// - **Frame completion deadline.** A frame the decoder announced (`FrameProgress`: it
///   reserved the frame's whole length in the inbound budget) must complete within
///   `frameCompletionSeconds`, or the sender is dropped (`TransportEvent.frameTimedOut`
///   to the protocol handler, which says why and closes; `slowSendersDropped`). While
///   the broker itself holds the connection's reads, the deadline starts over: the
///   sender is not the slow one then.
/// - **Outbound ledger.** Every answer (`Transmission`) is counted in the connection's
///   `ConnectionBudget` from when it is queued until its last byte is written.
/// - **Read pausing.** The connection's requests are not read (its `read` is held back)
///   while the socket is unwritable, more than `outboundBytesPerConnectionMax` is
///   queued, or the protocol handler holds a `ReadHold` reason; reading resumes when
///   none is left (`readsPaused` counts each pause).
/// - **Span writing.** A transmission's bytes and spans go out in order, the spans as
///   `FileRegion`s (sendfile); the spans are closed (descriptors back to the budget)
///   once the last byte is written or the write failed, then the write's promise
///   completes and, once per burst, `TransportEvent.writesCompleted` is sent on.
///   Over TLS (`copiesSpans`) a `FileRegion` cannot pass the TLS handler, so each span
///   is read (pread) into the transmission's buffer instead and its descriptor closed at
///   once; the listener bounds what one answer may copy by the connection's outbound
///   budget (TLS fetch responses are capped at `outboundBytesPerConnectionMax`).
///
/// ```swift
/// try sync.addHandler(ByteToMessageHandler(decoder))
/// try sync.addHandler(TransportHandler(budget: budget))
/// try sync.addHandler(protocolHandler)   // writes Transmissions
/// ```
public final class TransportHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Inbound messages (the decoder's frames) pass through untouched.
    public typealias InboundIn = Any
    public typealias InboundOut = Any
    public typealias OutboundIn = Transmission
    public typealias OutboundOut = IOData

    public let budget: ConnectionBudget
    /// How long an announced frame may take to complete.
    public let frameCompletionSeconds: Int64
    /// Spans are copied into buffers rather than sent as `FileRegion`s (TLS).
    public let copiesSpans: Bool
    private var context: ChannelHandlerContext?
    private var holds: Set<ReadHold> = []
    /// A `read` is held back.
    private var readHeld = false
    private var frameTimer: Scheduled<Void>?
    /// `service()` is queued on the event loop.
    private var serviceScheduled = false
    /// Writes that closed spans completed since the last `service()`.
    private var spansClosed = false

    public init(budget: ConnectionBudget, frameCompletionSeconds: Int64? = nil, copiesSpans: Bool = false) {
        self.budget = budget
        self.copiesSpans = copiesSpans
        self.frameCompletionSeconds = frameCompletionSeconds ?? budget.budgets.config.frameCompletionSeconds
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        frameTimer?.cancel()
        frameTimer = nil
        self.context = nil
    }

    /// True while the connection's reads are held back (for tests and the deadline).
    public var isHoldingReads: Bool { readHeld }

    // MARK: Inbound

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let progress = event as? FrameProgress {
            switch progress {
            case .started(let bytes): startFrameTimer(bytes: bytes)
            case .completed:
                frameTimer?.cancel()
                frameTimer = nil
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeReadsIfPossible() }
        context.fireChannelWritabilityChanged()
    }

    private func startFrameTimer(bytes: Int) {
        guard let context else { return }
        frameTimer?.cancel()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        frameTimer = context.eventLoop.scheduleTask(in: .seconds(frameCompletionSeconds)) {
            bound.value.frameTimedOut(bytes: bytes)
        }
    }

    private func frameTimedOut(bytes: Int) {
        frameTimer = nil
        guard let context, budget.hasInboundReservation else { return }
        if readHeld || shouldPauseReads {
            // The broker itself stopped reading: the sender is not the slow one.
            return startFrameTimer(bytes: bytes)
        }
        budget.budgets.count(.slowSendersDropped)
        context.fireUserInboundEventTriggered(TransportEvent.frameTimedOut(bytes: bytes, seconds: frameCompletionSeconds))
    }

    // MARK: Reads

    public func read(context: ChannelHandlerContext) {
        if shouldPauseReads {
            if !readHeld { budget.budgets.count(.readsPaused) }
            readHeld = true
        } else {
            context.read()
        }
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let change = event as? ReadHold.Change else {
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        if change.held {
            holds.insert(change.reason)
        } else if holds.remove(change.reason) != nil {
            resumeReadsIfPossible()
        }
        promise?.succeed()
    }

    /// Unwritable socket, too many bytes queued, or a reason of the protocol handler's.
    private var shouldPauseReads: Bool {
        guard let context else { return false }
        return !context.channel.isWritable || budget.isOverOutboundBudget || !holds.isEmpty
    }

    private func resumeReadsIfPossible() {
        guard readHeld, let context, !shouldPauseReads else { return }
        readHeld = false
        context.read()
    }

    // MARK: Writes

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var transmission = unwrapOutboundIn(data)
        if copiesSpans && !transmission.splices.isEmpty {
            do {
                transmission = try Self.copyingSpans(transmission, allocator: context.channel.allocator)
            } catch {
                transmission.closeSpans()
                promise?.fail(error)
                context.close(promise: nil)
                return
            }
        }
        let queued = transmission.byteCount
        budget.addOutbound(queued)
        let bytes = transmission.bytes
        var cursor = bytes.readerIndex
        let done = context.eventLoop.makePromise(of: Void.self)
        let splices = transmission.splices
        for (i, splice) in splices.enumerated() {
            let at = bytes.readerIndex + splice.position
            if at > cursor {
                context.write(wrapOutboundOut(.byteBuffer(bytes.getSlice(at: cursor, length: at - cursor)!)), promise: nil)
                cursor = at
            }
            let last = i == splices.count - 1 && cursor == bytes.writerIndex
            context.write(wrapOutboundOut(.fileRegion(splice.span.region)), promise: last ? done : nil)
        }
        if splices.isEmpty || cursor < bytes.writerIndex {
            context.write(wrapOutboundOut(.byteBuffer(bytes.getSlice(at: cursor, length: bytes.writerIndex - cursor)!)), promise: done)
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        done.futureResult.whenComplete { result in
            transmission.closeSpans()
            let handler = bound.value
            handler.budget.removeOutbound(queued)
            promise?.completeWith(result)
            handler.written(closedSpans: !splices.isEmpty)
        }
    }

    /// The transmission as plain bytes: each span read into the buffer where it goes, and
    /// closed (its descriptor back to the budget).
    static func copyingSpans(_ transmission: Transmission, allocator: ByteBufferAllocator) throws -> Transmission {
        defer { transmission.closeSpans() }
        let bytes = transmission.bytes
        var out = allocator.buffer(capacity: transmission.byteCount)
        var cursor = bytes.readerIndex
        for splice in transmission.splices {
            let at = bytes.readerIndex + splice.position
            out.writeImmutableBuffer(bytes.getSlice(at: cursor, length: at - cursor)!)
            cursor = at
            let region = splice.span.region
            var offset = region.readerIndex
            let end = region.endIndex
            try region.fileHandle.withUnsafeFileDescriptor { fd in
                while offset < end {
                    var n = 0
                    out.writeWithUnsafeMutableBytes(minimumWritableBytes: end - offset) { buffer in
                        n = pread(fd, buffer.baseAddress, end - offset, off_t(offset))
                        return max(0, n)
                    }
                    guard n > 0 else { throw IOError(errnoCode: n == 0 ? EIO : errno, reason: "pread of a fetch span") }
                    offset += n
                }
            }
        }
        out.writeImmutableBuffer(bytes.getSlice(at: cursor, length: bytes.writerIndex - cursor)!)
        return Transmission(out)
    }

    /// A transmission's last byte went out (or the write failed). Writes complete inside
    /// `flush()`, so what the freed room allows runs once, after the current work.
    private func written(closedSpans: Bool) {
        spansClosed = spansClosed || closedSpans
        guard let context, !serviceScheduled else { return }
        serviceScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.service() }
    }

    private func service() {
        serviceScheduled = false
        guard let context else { return }
        let closed = spansClosed
        spansClosed = false
        context.fireUserInboundEventTriggered(TransportEvent.writesCompleted(spansClosed: closed))
        resumeReadsIfPossible()
    }
}

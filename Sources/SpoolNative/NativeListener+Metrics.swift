import NIOCore
import SpoolBroker

extension NativeListener {
    /// Bytes written to this listener's connections and not yet taken by the kernel,
    /// summed over connections (NIO's `bufferedWritableBytes`); also sets the listener's
    /// `spool_buffered_out_bytes` gauge. Called when metrics are scraped.
    @discardableResult
    public func sampleBufferedOutboundBytes() async -> Int {
        var total = 0
        for channel in connections.all {
            total += (try? await channel.getOption(ChannelOptions.bufferedWritableBytes).get()) ?? 0
        }
        broker.events.metrics.listener(NativeCallMetrics.listener).bufferedOutBytes.set(total)
        return total
    }
}

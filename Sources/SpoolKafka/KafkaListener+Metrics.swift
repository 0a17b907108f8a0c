import NIOCore
import SpoolBroker

extension KafkaListener {
    /// Bytes written to Kafka connections and not yet taken by the kernel, summed over
    /// connections; sets the listener's `spool_buffered_out_bytes` gauge of `metrics`.
    @discardableResult
    public func sampleBufferedOutboundBytes(into metrics: BrokerMetrics) async -> Int {
        var total = 0
        for channel in connections.withLockedValue({ Array($0.values) }) {
            total += (try? await channel.getOption(ChannelOptions.bufferedWritableBytes).get()) ?? 0
        }
        metrics.listener(KafkaCallMetrics.listener).bufferedOutBytes.set(total)
        return total
    }
}

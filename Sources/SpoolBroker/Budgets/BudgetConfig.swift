/// The limits every listener applies to its clients (DESIGN.md §6: every resource has a
/// budget). Running into one slows or refuses the client that hit it, with a clear error;
/// it never stops a partition or the broker.
///
/// | limit | default | a client that hits it sees |
/// |---|---|---|
/// | `maxConnections` | derived from `RLIMIT_NOFILE` | GOAWAY `RESOURCE_EXHAUSTED`, then close |
/// | `descriptorReserve` | 64 | (descriptors kept for the process itself) |
/// | `spanDescriptorsPerConnectionMax` | 32 | its responses wait until earlier ones are written |
/// | `outboundBytesPerConnectionMax` | 4 MiB | the broker stops reading its requests until it reads |
/// | `inboundBufferedBytesMax` | 256 MiB | GOAWAY `RESOURCE_EXHAUSTED` for a frame that does not fit |
/// | `inboundFrameBytesGuaranteed` | 64 KiB | (frames this small are always buffered) |
/// | `frameCompletionSeconds` | 30 | GOAWAY `DEADLINE_EXCEEDED` for a frame not finished in time |
public struct BudgetConfig: Sendable, Hashable {
    /// Most client connections at once, over all listeners; nil derives it from the
    /// descriptor budget (a quarter of it). Never more than half the descriptor budget:
    /// each connection holds its socket and one span descriptor it can always use.
    public var maxConnections: Int?
    /// Descriptors left out of every budget, for the process itself (logs, metadata
    /// files, the listening sockets, the event loops' own descriptors).
    public var descriptorReserve = 64
    /// Most duplicated segment descriptors one connection holds for responses being
    /// written (each Fetch span or Subscribe event holds one until its last byte is out).
    public var spanDescriptorsPerConnectionMax = 32
    /// Bytes queued for writing on one connection (responses and the spans they carry)
    /// above which the broker stops reading that connection's requests.
    public var outboundBytesPerConnectionMax = 4 << 20
    /// Bytes buffered for frames not yet complete, over all connections.
    public var inboundBufferedBytesMax = 256 << 20
    /// An unfinished frame up to this size is buffered without drawing on
    /// `inboundBufferedBytesMax` (one per connection, so at most `maxConnections` times
    /// this): small calls go through even when big frames fill the shared budget.
    public var inboundFrameBytesGuaranteed = 64 << 10
    /// Longest a connection may take to finish a frame it started.
    public var frameCompletionSeconds: Int64 = 30

    public init() {}
}

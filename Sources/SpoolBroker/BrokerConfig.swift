import NIOCore
import SpoolStorage

/// Everything a broker and its listeners need to run, with documented defaults.
public struct BrokerConfig: Sendable {
    /// Address to listen on. Default: loopback only.
    public var host = "127.0.0.1"
    /// Port to listen on; 0 picks a free one.
    public var port = 9292
    /// Storage settings, including the data directory and topic defaults.
    public var storage: StorageConfig
    /// Largest frame accepted, payload included.
    public var maxFrameBytes = 16 << 20
    /// Most calls open at once on one connection.
    public var maxInFlightPerConnection = 1024
    /// Close a connection after this long without a frame and with no call open.
    public var idleTimeoutSeconds: Int64 = 600
    /// Event-loop threads (default: one per core).
    public var threads = System.coreCount
    /// Largest batch the broker builds from loose records (ProduceRecords).
    public var accumulatorBatchBytes = 256 << 10
    /// Partitions of a topic created without a partition count.
    public var defaultPartitions: Int32 = 1
    /// Threads of the I/O pool (appends, fsync waits, admin and metadata work).
    public var ioThreads = max(2, System.coreCount)
    /// Most partitions one topic may have (topic creation holds no global lock, but
    /// creating directories and descriptors is not free).
    public var maxPartitionsPerTopic: Int32 = 10_000
    /// Consumer-group coordinator limits and timings (Kafka's defaults).
    public var groups = GroupCoordinatorConfig()
    /// Longest a fetch may wait for data (caps `max_wait_ms`).
    public var maxFetchWaitMillis: UInt32 = 30_000

    /// Largest records section of one batch once decompressed: a batch that inflates past
    /// it is refused (RESOURCE_EXHAUSTED) before anything is stored.
    public var maxDecompressedBatchBytes = 64 << 20
    /// Most records in one ProduceRecords request (INVALID_ARGUMENT above it).
    public var maxRecordsPerRequest = 10_000
    /// Connections, descriptors, and bytes buffered in and out: see `BudgetConfig`.
    public var budgets = BudgetConfig()
    /// ACL checks (Kafka's authorizer, `super.users`, `allow.everyone.if.no.acl.found`); off by default.
    public var authorization = Authorizer.Config()
    /// Client quotas' sampling (Kafka's `quota.window.num`, `quota.window.size.seconds`).
    public var quotas = ClientQuotaManager.Config()
    /// This broker's node id in a cluster; nil in single-node mode (where it leads every
    /// partition alone and no `ReplicaState` is ever applied).
    public var nodeId: Int32?
    /// A follower that has not caught up with the leader's log end for this long leaves
    /// the ISR (`replica.lag.time.max.ms`).
    public var replicaLagTimeMaxMillis: Int64 = 30_000
    /// Cluster mode: ACLs and client quotas live in the cluster's metadata (the cluster layer
    /// sets `Broker.clusterSecurity` and applies them with `applyClusterSecurity`), not in the
    /// data directory's files; they start empty (the authorizer refuses all but super users
    /// until the first apply).
    public var securityInCluster = false
    /// How long acks=all waits for the ISR when the request names no timeout.
    public var defaultProduceTimeoutMillis: Int64 = 30_000

    /// The broker's own settings as it was started with them (config file and flags, by
    /// Kafka-style key): DescribeConfigs on the BROKER resource lists them read-only.
    public var staticSettings: [String: String] = [:]
    /// Every key of the broker's own settings, given or not: AlterConfigs on the BROKER
    /// resource refuses to change them while it runs (Spool reads them only at start).
    public var staticSettingKeys: Set<String> = []

    public init(dataDirectory: String) {
        storage = StorageConfig(dataDirectory: dataDirectory)
        // offsets.flush.ms: answered once written, fsynced within 1 s (Kafka's semantics).
        storage.offsetsFlush = .default
    }
}

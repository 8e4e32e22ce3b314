import OutpostCore

extension AnswerCache {
    public struct Configuration: Sendable {
        /// The SQLite file (created if absent).
        public var path: String
        public var memoryBudgetBytes: Int = EvictionPolicy.defaultMemoryBudgetBytes
        public var diskBudgetBytes: Int = EvictionPolicy.defaultDiskBudgetBytes
        /// Most fills waiting to be written; beyond it fills are dropped and counted.
        public var queueCapacity: Int = 65_536
        /// Fills waiting that trigger a flush before the interval is up.
        public var batchSize: Int = 512
        /// Most fills one transaction takes when more are waiting (group commit under load):
        /// each flush rewrites the key index pages it touches, so a backlog is written in fewer,
        /// larger transactions. At least `batchSize`.
        public var maxBatchSize: Int = 8192
        public var flushIntervalMillis: UInt64 = 100
        /// Stored answers at least this long (bytes) are zstd-compressed.
        public var compressionThreshold: Int = 512
        public var compressionLevel: Int32 = 1
        /// Longest answer text kept; longer ones are refused (and counted as dropped).
        public var maxAnswerBytes: Int = 1 << 20
        public var defaultTTLMillis: UInt64 = 24 * 3_600_000
        public var defaultStaleWhileRevalidateMillis: UInt64 = 3_600_000
        /// How long tombstones are kept; a fill older than this is refused outright.
        public var tombstoneHorizonMillis: UInt64 = 7 * 24 * 3_600_000
        /// How often the flusher expires tombstones and dead entries.
        public var maintenanceIntervalMillis: UInt64 = 60_000
        /// Wall clock in milliseconds since the Unix epoch (injected by tests).
        public var wallClock: HybridLogicalClock.WallClock = HybridLogicalClock.systemWallMillis
        /// Called on the flusher thread after each committed flush, and on the invalidating thread
        /// after each durable invalidation.
        public var onDurable: (@Sendable (DurableEvent) -> Void)?

        public init(path: String) {
            self.path = path
        }

        func validate() throws(AnswerCacheError) {
            guard path.hasSuffix(".sqlite") else {
                throw .invalidConfiguration("the cache file name must end in .sqlite, got \(path)")
            }
            guard memoryBudgetBytes >= 0, diskBudgetBytes > 0 else {
                throw .invalidConfiguration("budgets must be positive")
            }
            guard queueCapacity > 0, batchSize > 0, maxBatchSize > 0 else {
                throw .invalidConfiguration("queue capacity and batch sizes must be positive")
            }
            guard maxAnswerBytes > 0, maxAnswerBytes <= 64 << 20 else {
                throw .invalidConfiguration("maxAnswerBytes must be in 1…64 MiB")
            }
            guard (1...22).contains(compressionLevel) else {
                throw .invalidConfiguration("compression level must be 1…22, got \(compressionLevel)")
            }
            try Settings(self).validate()
        }
    }

    /// What became durable.
    public enum DurableEvent: Sendable {
        /// A batch committed: how many fills it wrote and the newest fill clock reading in it.
        case flushed(written: Int, newestFill: HLCTimestamp?)
        /// An invalidation committed with `synchronous=FULL`.
        case invalidated(Tombstone)
    }
}

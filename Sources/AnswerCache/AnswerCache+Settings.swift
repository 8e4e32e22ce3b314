extension AnswerCache {
    /// The limits that can change while the cache runs (`reconfigure`); the rest of
    /// `Configuration` is fixed when the cache opens.
    public struct Settings: Sendable, Equatable {
        public var memoryBudgetBytes: Int
        public var diskBudgetBytes: Int
        public var flushIntervalMillis: UInt64
        public var batchSize: Int
        public var queueCapacity: Int

        public init(memoryBudgetBytes: Int, diskBudgetBytes: Int, flushIntervalMillis: UInt64, batchSize: Int,
                    queueCapacity: Int) {
            self.memoryBudgetBytes = memoryBudgetBytes
            self.diskBudgetBytes = diskBudgetBytes
            self.flushIntervalMillis = flushIntervalMillis
            self.batchSize = batchSize
            self.queueCapacity = queueCapacity
        }

        /// The limits in force, as `GET /v1/cache/stats` reports them next to the counters.
        public var counters: [String: Int] {
            ["memory_budget_bytes": memoryBudgetBytes, "disk_budget_bytes": diskBudgetBytes,
             "flush_interval_ms": Int(flushIntervalMillis), "batch_size": batchSize, "queue_capacity": queueCapacity]
        }

        /// The limits `configuration` opens the cache with.
        public init(_ configuration: Configuration) {
            self.init(memoryBudgetBytes: configuration.memoryBudgetBytes, diskBudgetBytes: configuration.diskBudgetBytes,
                      flushIntervalMillis: configuration.flushIntervalMillis, batchSize: configuration.batchSize,
                      queueCapacity: configuration.queueCapacity)
        }

        /// Longest flush interval accepted: one hour.
        public static let maxFlushIntervalMillis: UInt64 = 3_600_000

        public func validate() throws(AnswerCacheError) {
            guard memoryBudgetBytes >= 0, diskBudgetBytes > 0 else {
                throw .invalidConfiguration("the memory budget must be 0 or more and the disk budget positive")
            }
            guard queueCapacity > 0, batchSize > 0 else {
                throw .invalidConfiguration("queue capacity and batch size must be positive")
            }
            guard flushIntervalMillis <= Self.maxFlushIntervalMillis else {
                throw .invalidConfiguration("the flush interval must be at most \(Self.maxFlushIntervalMillis) ms, got \(flushIntervalMillis)")
            }
        }

        static func nanos(millis: UInt64) -> UInt64 {
            let (n, overflow) = millis.multipliedReportingOverflow(by: 1_000_000)
            return overflow ? UInt64.max : n
        }
    }

    /// The limits in force.
    public var settings: Settings { core.state.withLock { $0.settings } }

    /// Changes the limits while the cache runs (the flusher keeps running):
    /// - the budgets as `EvictionPolicy` says: the memory budget at once, the disk budget at the
    ///   flusher's next run (its next flush, or now when idle);
    /// - the flush interval, batch size and queue capacity for the flusher's next decision. A
    ///   capacity below what is queued keeps every queued fill; new fills are dropped (and
    ///   counted) until the queue is below it.
    public func reconfigure(_ settings: Settings) throws(AnswerCacheError) {
        try settings.validate()
        let policy = EvictionPolicy(settings)
        core.store.apply(policy)
        let wake = core.state.withLock { s -> Bool in
            let shrinksDisk = policy.shrinksDisk(from: EvictionPolicy(s.settings))
            s.settings = settings
            s.memory.apply(policy)
            let sooner = s.queue.reconfigure(capacity: settings.queueCapacity, batchSize: settings.batchSize,
                                             flushIntervalNanos: Settings.nanos(millis: settings.flushIntervalMillis))
            if shrinksDisk { s.diskBudgetCheck = true }
            return sooner || shrinksDisk
        }
        if wake { core.wake.signal() }
    }
}

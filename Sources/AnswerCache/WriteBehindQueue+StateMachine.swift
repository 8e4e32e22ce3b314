import OutpostCore

extension WriteBehindQueue {
    /// The queue's state without I/O. The cache calls it under its lock; the flusher asks it what
    /// to do next (`nextAction`), and tells it when a batch is written (`flushCompleted`).
    struct StateMachine: Sendable {
        enum State: Sendable, Equatable {
            case running
            /// `close()` was called: flush everything that is left, then finish.
            case draining
            case finished
        }

        private(set) var capacity: Int
        private(set) var batchSize: Int
        private(set) var maxBatchSize: Int
        private(set) var flushIntervalNanos: UInt64
        let touchCapacity: Int
        /// The group-commit limit asked for at init (`maxBatchSize` is never below `batchSize`).
        private let maxBatchSizeSetting: Int

        private(set) var state: State = .running
        private(set) var pending: [CacheKey: Fill] = [:]
        /// Keys in first-queued order; a key may be stale here (removed from `pending`), and is
        /// then skipped.
        private var order: [CacheKey] = []
        private var orderHead = 0
        private var touches: [CacheKey: UInt64] = [:]
        /// When the oldest unflushed item (fill or touch) was queued.
        private var dueSinceNanos: UInt64?
        /// The flusher is asleep with nothing to wait for; the next fill must wake it.
        private var flusherIdle = false
        /// A caller asked for everything to be written now (`requestFlush`).
        private var flushRequested = false
        /// A batch is being written.
        private(set) var flushing = false
        private(set) var tombstones = TombstoneSet()

        init(capacity: Int, batchSize: Int, maxBatchSize: Int? = nil, flushIntervalNanos: UInt64, touchCapacity: Int? = nil) {
            self.capacity = max(1, capacity)
            self.batchSize = max(1, batchSize)
            self.maxBatchSizeSetting = maxBatchSize ?? batchSize
            self.maxBatchSize = max(self.batchSize, maxBatchSizeSetting)
            self.flushIntervalNanos = flushIntervalNanos
            self.touchCapacity = touchCapacity ?? max(1, capacity)
        }

        var depth: Int { pending.count }

        /// Changes the limits while running. A capacity below the current depth keeps every fill
        /// already queued (they are still written); new fills are dropped until the depth is below
        /// it. A smaller batch size or a shorter interval takes effect at the flusher's next
        /// decision: returns whether it should be woken to make it now.
        mutating func reconfigure(capacity: Int, batchSize: Int, flushIntervalNanos: UInt64) -> Bool {
            let sooner = batchSize < self.batchSize || flushIntervalNanos < self.flushIntervalNanos
            self.capacity = max(1, capacity)
            self.batchSize = max(1, batchSize)
            self.maxBatchSize = max(self.batchSize, maxBatchSizeSetting)
            self.flushIntervalNanos = flushIntervalNanos
            guard sooner, state != .finished, !(pending.isEmpty && touches.isEmpty) else { return false }
            flusherIdle = false
            return true
        }

        /// Whether nothing is queued and no batch is being written.
        var isDrained: Bool { pending.isEmpty && touches.isEmpty && !flushing }

        func pendingFill(for key: CacheKey) -> Fill? { pending[key] }

        mutating func enqueue(_ fill: Fill, nowNanos: UInt64) -> EnqueueResult {
            guard state == .running else { return .closed }
            if tombstones.covers(key: fill.key, namespace: fill.namespace, tags: fill.tags, hlc: fill.hlc) {
                return .discarded
            }
            if let existing = pending[fill.key] {
                guard fill.hlc >= existing.hlc else { return .superseded }
                pending[fill.key] = fill
                return .coalesced
            }
            guard pending.count < capacity else { return .dropped }
            pending[fill.key] = fill
            order.append(fill.key)
            let wasEmpty = dueSinceNanos == nil
            if wasEmpty { dueSinceNanos = nowNanos }
            let wake = flusherIdle || pending.count == batchSize
            flusherIdle = false
            return .queued(wakeFlusher: wake)
        }

        /// Records that an entry was read (for eviction by last access). Coalesced per key; when
        /// the table is full the touch is forgotten (it only orders evictions).
        mutating func touch(_ key: CacheKey, millis: UInt64, nowNanos: UInt64) {
            guard state == .running else { return }
            if touches[key] == nil {
                guard touches.count < touchCapacity else { return }
                if dueSinceNanos == nil { dueSinceNanos = nowNanos }
            }
            touches[key] = millis
        }

        /// Applies a tombstone: queued fills it covers are dropped, and later fills it covers
        /// will be discarded. Returns how many queued fills were dropped.
        mutating func invalidate(_ tombstone: Tombstone) -> Int {
            tombstones.apply(tombstone)
            let doomed = pending.values.filter {
                $0.hlc <= tombstone.hlc && tombstone.scope.covers(key: $0.key, namespace: $0.namespace, tags: $0.tags)
            }
            for fill in doomed { pending[fill.key] = nil }
            if pending.isEmpty { resetOrder() }
            if pending.isEmpty && touches.isEmpty { dueSinceNanos = nil }
            return doomed.count
        }

        mutating func expireTombstones(before horizon: HLCTimestamp) {
            tombstones.expire(before: horizon)
        }

        /// Asks for everything queued to be written without waiting for the interval.
        /// Returns whether the flusher needs a wake-up.
        mutating func requestFlush() -> Bool {
            guard !(pending.isEmpty && touches.isEmpty) else { return false }
            flushRequested = true
            defer { flusherIdle = false }
            return true
        }

        /// Stops accepting fills; what is queued is still written. Returns whether the flusher
        /// needs a wake-up.
        mutating func close() -> Bool {
            guard state == .running else { return false }
            state = .draining
            return true
        }

        /// What the flusher does next.
        mutating func nextAction(nowNanos: UInt64) -> Action {
            precondition(!flushing, "nextAction while a batch is being written")
            if pending.isEmpty && touches.isEmpty {
                flushRequested = false
                if state == .draining || state == .finished {
                    state = .finished
                    return .finish
                }
                flusherIdle = true
                return .idle
            }
            let due = dueSinceNanos.map { nowNanos &- $0 >= flushIntervalNanos } ?? true
            guard state == .draining || flushRequested || pending.count >= batchSize || due else {
                return .wait(untilNanos: (dueSinceNanos ?? nowNanos) &+ flushIntervalNanos)
            }
            var fills: [Fill] = []
            let take = min(maxBatchSize, pending.count)
            fills.reserveCapacity(take)
            while fills.count < take, orderHead < order.count {
                let key = order[orderHead]
                orderHead += 1
                if let fill = pending.removeValue(forKey: key) { fills.append(fill) }
            }
            let batchTouches = touches.map { (key: $0.key, millis: $0.value) }
            touches.removeAll(keepingCapacity: true)
            if pending.isEmpty {
                resetOrder()
                dueSinceNanos = nil
            } else {
                if orderHead > 4096 && orderHead * 2 > order.count {
                    order.removeFirst(orderHead)
                    orderHead = 0
                }
                // What is left was queued after the batch was cut: its interval starts now.
                dueSinceNanos = nowNanos
            }
            flushing = true
            return .flush(Batch(fills: fills, touches: batchTouches))
        }

        /// The batch from the last `.flush` was written (or failed and was given up).
        mutating func flushCompleted() {
            flushing = false
        }

        private mutating func resetOrder() {
            order.removeAll(keepingCapacity: true)
            orderHead = 0
        }
    }
}

import OutpostCore

/// The write-behind queue: fills wait here, coalesced per key, until the flusher writes them in
/// one transaction per batch. Its logic is `WriteBehindQueue.StateMachine`, a plain value with no
/// I/O and no clock of its own (times are passed in), tested step by step.
enum WriteBehindQueue {
    /// One fill waiting to be made durable.
    typealias Fill = CachedEntry

    /// What one flush writes: fills in the order they were first queued, and last-access times
    /// of entries read from memory (for eviction by last access).
    struct Batch: Sendable {
        var fills: [Fill]
        var touches: [(key: CacheKey, millis: UInt64)]
        var isEmpty: Bool { fills.isEmpty && touches.isEmpty }
    }

    enum EnqueueResult: Sendable, Equatable {
        /// Queued; `wakeFlusher` tells the caller to signal the flusher.
        case queued(wakeFlusher: Bool)
        /// Replaced a queued fill for the same key.
        case coalesced
        /// A queued fill for the same key is newer; this one is dropped.
        case superseded
        /// A tombstone at least as new covers it.
        case discarded
        /// The queue is full.
        case dropped
        /// The queue is closed.
        case closed
    }

    enum Action: Sendable {
        /// Write this batch, then report `flushCompleted`.
        case flush(Batch)
        /// Nothing due before this monotonic time (nanoseconds); sleep until then or a wake-up.
        case wait(untilNanos: UInt64)
        /// Nothing queued; sleep until woken.
        case idle
        /// Closed and drained: the flusher exits.
        case finish
    }
}

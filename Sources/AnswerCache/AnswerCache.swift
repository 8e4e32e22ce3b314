import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization

/// The answer cache: a memory tier (LRU with a byte budget) in front of an SQLite file, filled
/// write-behind. See DESIGN.md, "Answer cache".
///
/// - `lookup` answers fresh, stale (past the TTL, inside the stale-while-revalidate window) or miss.
/// - `fill` never waits on I/O: it takes one short lock to put the answer in memory and in the
///   write-behind queue; a dedicated flusher thread writes the queue in one transaction per batch
///   (every `flushIntervalMillis`, or as soon as `batchSize` fills wait). A full queue drops fills.
/// - `invalidate` is applied in memory and in the queue at once and committed durably before it
///   returns; its tombstone makes every older fill covered by it disappear wherever it is.
/// - `value(for:…)` coalesces concurrent misses on one key into one computation.
/// - `close()` drains the queue and stops the flusher; call it before the process exits.
public final class AnswerCache: Sendable {
    public let configuration: Configuration
    /// The clock stamping fills and tombstones; PeerSync shares it.
    public let clock: HybridLogicalClock
    let core: Core
    private let inflight = Mutex<[CacheKey: Flight]>([:])

    private struct Flight: Sendable {
        let id: UInt64
        let task: Task<Answer, any Error>
    }

    private let flightIDs = Atomic<UInt64>(0)

    public init(configuration: Configuration) throws(AnswerCacheError) {
        try configuration.validate()
        self.configuration = configuration
        let store = try AnswerStore(options: AnswerStore.Options(
            path: configuration.path, diskBudgetBytes: configuration.diskBudgetBytes,
            compressionThreshold: configuration.compressionThreshold,
            compressionLevel: configuration.compressionLevel, maxAnswerBytes: configuration.maxAnswerBytes))
        clock = HybridLogicalClock(wallClock: configuration.wallClock)
        let now = configuration.wallClock()
        let horizon = Self.horizon(nowMillis: now, configuration: configuration)
        try store.maintain(tombstoneHorizon: horizon, nowMillis: now)
        let tombstones = try store.tombstones(newerThan: horizon)
        clock.advance(past: try store.newestReading())
        core = Core(configuration: configuration, store: store, tombstones: tombstones)
        core.startFlusher()
    }

    deinit {
        core.shutdown()
    }

    static func horizon(nowMillis: UInt64, configuration: Configuration) -> HLCTimestamp {
        let wall = nowMillis > configuration.tombstoneHorizonMillis ? nowMillis - configuration.tombstoneHorizonMillis : 0
        return HLCTimestamp(wallMillis: min(wall, HLCTimestamp.maxWallMillis), logical: 0)
    }

    // MARK: Lookup and fill

    public func lookup(_ key: CacheKey) -> CacheLookup {
        let now = configuration.wallClock()
        let nanos = Core.monotonicNanos()
        let fromMemory: CacheLookup? = core.state.withLock { s in
            if let entry = s.memory.get(key) ?? s.queue.pendingFill(for: key) {
                return s.answer(entry, now: now, nanos: nanos)
            }
            return nil
        }
        if let fromMemory { return fromMemory }
        let stored: CachedEntry?
        do {
            stored = try core.store.read(key)
        } catch {
            return core.state.withLock { s in
                s.stats.readErrors += 1
                s.stats.misses += 1
                return .miss
            }
        }
        return core.state.withLock { s in
            // The row may have been invalidated, or refilled, while it was being read.
            guard var entry = stored,
                  !s.queue.tombstones.covers(key: key, namespace: entry.namespace, tags: entry.tags, hlc: entry.hlc)
            else {
                s.stats.misses += 1
                return .miss
            }
            if let newer = s.memory.peek(key), newer.hlc >= entry.hlc { entry = newer }
            let result = s.answer(entry, now: now, nanos: nanos)
            if result != .miss { s.memory.insert(entry) }
            return result
        }
    }

    /// Queues `answer` under `key`. Never blocks on I/O and never throws; the result says what
    /// happened. `startedAt` is the clock reading when the computation began (so an invalidation
    /// that happened while it ran wins); by default the fill is stamped now. Namespace and tags
    /// must be valid labels (`Query.validateLabel`) and the text at most `maxAnswerBytes`, or the
    /// fill is dropped.
    @discardableResult
    public func fill(
        _ key: CacheKey, answer: Answer, namespace: String = Query.defaultNamespace, tags: [String] = [],
        ttlMillis: UInt64? = nil, staleWhileRevalidateMillis: UInt64? = nil, startedAt: HLCTimestamp? = nil
    ) -> FillResult {
        let now = configuration.wallClock()
        let hlc = startedAt ?? clock.tick()
        let valid = answer.text.utf8.count <= configuration.maxAnswerBytes
            && (try? Query.validateLabel(namespace, field: "namespace")) != nil
            && tags.allSatisfy { (try? Query.validateLabel($0, field: "tags")) != nil }
        guard valid else {
            core.state.withLock { $0.stats.fills += 1; $0.stats.fillsDropped += 1 }
            return .dropped
        }
        if hlc < Self.horizon(nowMillis: now, configuration: configuration) {
            core.state.withLock { $0.stats.fills += 1; $0.stats.fillsDiscarded += 1 }
            return .discarded
        }
        let ttl = ttlMillis ?? configuration.defaultTTLMillis
        let swr = staleWhileRevalidateMillis ?? configuration.defaultStaleWhileRevalidateMillis
        let expires = now.addingReportingOverflow(ttl)
        let expiresMillis = expires.overflow ? UInt64.max : expires.partialValue
        let stale = expiresMillis.addingReportingOverflow(swr)
        let entry = CachedEntry(
            key: key, answer: answer, namespace: namespace, tags: tags.count > 1 ? Array(Set(tags)).sorted() : tags,
            hlc: hlc, createdMillis: now, expiresMillis: expiresMillis,
            staleUntilMillis: stale.overflow ? UInt64.max : stale.partialValue)
        let nanos = Core.monotonicNanos()
        let (result, wake): (FillResult, Bool) = core.state.withLock { s in
            s.stats.fills += 1
            switch s.queue.enqueue(entry, nowNanos: nanos) {
            case .queued(let wake):
                s.memory.insert(entry)
                return (.queued(hlc), wake)
            case .coalesced:
                s.stats.fillsCoalesced += 1
                s.memory.insert(entry)
                return (.coalesced(hlc), false)
            case .superseded, .discarded:
                s.stats.fillsDiscarded += 1
                return (.discarded, false)
            case .dropped:
                s.stats.fillsDropped += 1
                return (.dropped, false)
            case .closed:
                return (.closed, false)
            }
        }
        if wake { core.wake.signal() }
        return result
    }

    /// The answer for `key`: from the cache when fresh; when stale, the stale answer now and a
    /// refresh in the background; on a miss, `compute`'s answer, which then fills the cache.
    /// Concurrent callers missing on the same key share one computation.
    public func value(
        for key: CacheKey, namespace: String = Query.defaultNamespace, tags: [String] = [],
        compute: @escaping @Sendable () async throws -> Answer
    ) async throws -> CachedValue {
        switch lookup(key) {
        case .fresh(let answer):
            return CachedValue(answer: answer, source: .fresh)
        case .stale(let answer):
            _ = flight(for: key, namespace: namespace, tags: tags, compute: compute)
            return CachedValue(answer: answer, source: .stale)
        case .miss:
            let answer = try await flight(for: key, namespace: namespace, tags: tags, compute: compute).value
            return CachedValue(answer: answer, source: .computed)
        }
    }

    /// The computation in flight for `key`, started if there is none.
    func flight(
        for key: CacheKey, namespace: String, tags: [String], compute: @escaping @Sendable () async throws -> Answer
    ) -> Task<Answer, any Error> {
        inflight.withLock { flights in
            if let running = flights[key] { return running.task }
            let id = flightIDs.wrappingAdd(1, ordering: .relaxed).newValue
            let startedAt = clock.tick()
            let task = Task { [self] () async throws -> Answer in
                defer {
                    inflight.withLock { flights in
                        if flights[key]?.id == id { flights[key] = nil }
                    }
                }
                let answer = try await compute()
                fill(key, answer: answer, namespace: namespace, tags: tags, startedAt: startedAt)
                return answer
            }
            flights[key] = Flight(id: id, task: task)
            return task
        }
    }

    // MARK: Invalidation

    /// Invalidates everything under `scope` stamped before now. Applied in memory and in the
    /// queue at once, and committed to disk with `synchronous=FULL` before it returns.
    @discardableResult
    public func invalidate(_ scope: InvalidationScope) throws(AnswerCacheError) -> Tombstone {
        try invalidate(scope, recordingIn: nil)
    }

    /// A local invalidation that is also to be announced to peers: the tombstone and its record in
    /// `outbox` (which must be this cache's) are committed in one transaction.
    public func invalidate(_ scope: InvalidationScope, recordingIn outbox: InvalidationOutbox?) throws(AnswerCacheError) -> Tombstone {
        try scope.validate()
        let tombstone = Tombstone(scope: scope, hlc: clock.tick())
        try apply(tombstone, outboxCapacity: outbox?.capacity)
        return tombstone
    }

    /// Applies a tombstone received from a peer: its clock reading is merged into ours first.
    public func apply(remote tombstone: Tombstone) throws(AnswerCacheError) {
        try tombstone.scope.validate()
        do { _ = try clock.receive(tombstone.hlc) } catch { throw .clock(error) }
        try apply(tombstone)
    }

    private func apply(_ tombstone: Tombstone, outboxCapacity: Int? = nil) throws(AnswerCacheError) {
        core.state.withLock { s in
            s.memory.removeAll {
                $0.hlc <= tombstone.hlc && tombstone.scope.covers(key: $0.key, namespace: $0.namespace, tags: $0.tags)
            }
            _ = s.queue.invalidate(tombstone)
        }
        _ = try core.store.invalidate(tombstone, outboxCapacity: outboxCapacity)
        core.state.withLock { $0.stats.invalidationsApplied += 1 }
        configuration.onDurable?(.invalidated(tombstone))
    }

    // MARK: Flushing, closing, inspecting

    /// Writes everything queued now without waiting for the interval, and returns when the queue
    /// is empty and no batch is being written.
    public func flush() {
        if core.state.withLock({ $0.queue.requestFlush() }) { core.wake.signal() }
        while !core.state.withLock({ $0.queue.isDrained || $0.queue.state == .finished }) {
            usleep(1000)
        }
    }

    /// Stops accepting fills, writes everything queued, and stops the flusher. Idempotent.
    /// Lookups and invalidations still work afterwards.
    public func close() {
        core.shutdown()
    }

    public func stats() -> AnswerCacheStats {
        var stats = core.state.withLock { s in
            var stats = s.stats
            stats.queueDepth = s.queue.depth
            stats.memoryEntries = s.memory.count
            stats.memoryBytes = s.memory.bytes
            stats.memoryEvictions = s.memory.evictions
            stats.tombstones = s.queue.tombstones.count
            return stats
        }
        if let counts = try? core.store.counts() {
            stats.entries = counts.entries
            stats.bytes = counts.bytes
        }
        return stats
    }

    /// SQLite's `integrity_check` of the file: `["ok"]` when sound.
    public func integrityCheck() throws(AnswerCacheError) -> [String] {
        try core.store.integrityCheck()
    }

    /// Every key stored on disk (not the queue), for checks and tests.
    public func storedKeys() throws(AnswerCacheError) -> [CacheKey] {
        try core.store.storedKeys()
    }
}

extension AnswerCache.Core.State {
    /// Counts and answers a lookup of `entry`; touches it for eviction by last access.
    mutating func answer(_ entry: CachedEntry, now: UInt64, nanos: UInt64) -> CacheLookup {
        switch entry.freshness(at: now) {
        case .fresh:
            stats.hits += 1
            queue.touch(entry.key, millis: now, nowNanos: nanos)
            return .fresh(entry.answer)
        case .stale:
            stats.staleHits += 1
            queue.touch(entry.key, millis: now, nowNanos: nanos)
            return .stale(entry.answer)
        case .expired:
            memory.remove(entry.key)
            stats.misses += 1
            return .miss
        }
    }
}

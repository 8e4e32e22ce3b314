/// Counters of one cache since it was opened, plus the current sizes.
public struct AnswerCacheStats: Sendable, Codable, Equatable {
    public var hits = 0
    public var staleHits = 0
    public var misses = 0
    public var fills = 0
    public var fillsDropped = 0
    public var fillsDiscarded = 0
    public var fillsCoalesced = 0
    public var flushes = 0
    public var flushErrors = 0
    /// Fills written to SQLite (made durable).
    public var flushed = 0
    public var flushLatencyLastMicros = 0
    public var flushLatencyMaxMicros = 0
    public var flushLatencyTotalMicros = 0
    public var flushLatencyAverageMicros = 0
    public var queueDepth = 0
    /// Entries and bytes in use in the SQLite file.
    public var entries = 0
    public var bytes = 0
    public var memoryEntries = 0
    public var memoryBytes = 0
    public var memoryEvictions = 0
    public var diskEvictions = 0
    public var readErrors = 0
    public var invalidationsApplied = 0
    public var tombstones = 0

    enum CodingKeys: String, CodingKey {
        case hits, misses, fills, flushes, flushed, entries, bytes, tombstones
        case staleHits = "stale_hits"
        case fillsDropped = "fills_dropped"
        case fillsDiscarded = "fills_discarded"
        case fillsCoalesced = "fills_coalesced"
        case flushErrors = "flush_errors"
        case flushLatencyLastMicros = "flush_latency_last_us"
        case flushLatencyMaxMicros = "flush_latency_max_us"
        case flushLatencyTotalMicros = "flush_latency_total_us"
        case flushLatencyAverageMicros = "flush_latency_avg_us"
        case queueDepth = "queue_depth"
        case memoryEntries = "memory_entries"
        case memoryBytes = "memory_bytes"
        case memoryEvictions = "memory_evictions"
        case diskEvictions = "disk_evictions"
        case readErrors = "read_errors"
        case invalidationsApplied = "invalidations_applied"
    }

    /// The counters the local API's `GET /v1/cache/stats` reports, by their snake_case names.
    public var counters: [String: Int] {
        [
            "hits": hits, "stale_hits": staleHits, "misses": misses, "fills": fills,
            "fills_dropped": fillsDropped, "fills_discarded": fillsDiscarded, "flushes": flushes,
            "flush_latency_last_us": flushLatencyLastMicros, "flush_latency_max_us": flushLatencyMaxMicros,
            "queue_depth": queueDepth, "entries": entries, "bytes": bytes,
            "memory_entries": memoryEntries, "memory_bytes": memoryBytes,
            "invalidations_applied": invalidationsApplied, "tombstones": tombstones,
        ]
    }
}
